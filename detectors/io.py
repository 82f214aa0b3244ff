"""Everything that touches files: FITS frames in, tracks and reports out.

Readers turn one FITS file into a `Frame` whatever the file layout (single
HDU, MEF, gzip, tile compression, data-quality extensions, calibration
frames); what the header values mean (time, WCS, gain, ...) is decoded by
`detectors.headers`. Every problem is an `InputError` that names the file and
the fix.

Writers go through a temporary name and an atomic rename, so a crash never
leaves a half-written result where a user (or the next stage) would read it.
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .backend import to_numpy
from .errors import InputError
from .faint import FaintSeeds
from .handoff import Tiles, cut_tiles, from_tiles
from .headers import (
    celestial_wcs,
    check_wcs,
    data_section,
    detector_origin,
    exposure_time,
    instrument_values,
    mid_exposure_mjd,
    pixel_scaling,
)
from .types import (
    Candidates,
    Differences,
    FastResult,
    Frame,
    Mover,
    Registration,
    SkySolution,
)

__all__ = [
    "FITS_SUFFIXES",
    "LoadResult",
    "SkippedFileWarning",
    "check_frames",
    "expand_paths",
    "load_fast_result",
    "load_frame",
    "load_frames",
    "load_template",
    "read_wcs_file",
    "save_fast_result",
    "write_bytes",
    "write_fits",
    "write_json",
    "write_png",
    "write_simulated_field",
    "write_star_list",
    "write_text",
]

#: File endings a folder is searched for (compared case-insensitively).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz", ".fit.gz")

Calibration = np.ndarray | str | os.PathLike | None

_AUX_EXTNAMES = {"DQ", "MASK", "BPM", "ERR", "VAR", "VARIANCE", "WHT", "WEIGHT", "SIGMA"}
_MASK_EXTNAMES = ("DQ", "MASK")
#: Frames closer in time than this (days) are taken to be the same exposure.
_SAME_TIME_DAYS = 0.5 / 86400.0


class SkippedFileWarning(UserWarning):
    """A file that ``load_frames(..., on_error="skip")`` left out, with the reason."""


@dataclass
class LoadResult(Sequence[Frame]):
    """Frames read from a list of files, sorted by time, and the files left out.

    It behaves as the sequence of frames (``len``, indexing, iteration), so
    code that only wants the frames can ignore ``skipped``.

    Attributes
    ----------
    frames : list of Frame
        Readable frames, sorted by mid-exposure time.
    skipped : list of (str, str)
        ``(file name, reason)`` for every file that could not be used.
    """

    frames: list[Frame]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    @overload
    def __getitem__(self, index: int) -> Frame: ...
    @overload
    def __getitem__(self, index: slice) -> list[Frame]: ...
    def __getitem__(self, index: int | slice) -> Frame | list[Frame]:
        return self.frames[index]

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)


# --------------------------------------------------------------------------- paths


def expand_paths(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Turn command-line style inputs into a list of files.

    Parameters
    ----------
    inputs : sequence of str or path
        Each is a file, a folder (its FITS files, see `FITS_SUFFIXES`, sorted
        by name; not recursive) or a glob pattern (its matches, sorted).

    Returns
    -------
    list of Path
        In input order, duplicates removed.

    Raises
    ------
    InputError
        An input that does not exist, a folder without FITS files, or a
        pattern that matches no file.
    """
    out: dict[Path, None] = {}
    for item in inputs:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(FITS_SUFFIXES)
            )
            if not found:
                raise InputError(
                    f"{text}: folder has no FITS files (looked for {', '.join(FITS_SUFFIXES)})."
                )
        elif path.exists():
            found = [path]
        elif glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
            found = [p for p in found if p.is_file()]
            if not found:
                raise InputError(f"{text}: pattern matches no file; check the path and quoting.")
        else:
            raise InputError(f"{text}: no such file or folder.")
        out.update(dict.fromkeys(found))
    return list(out)


# --------------------------------------------------------------------------- pixels


def _is_image(hdu: Any) -> bool:
    """A 2-D image HDU (extra axes of length 1 allowed)."""
    if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
        return False
    naxis = int(hdu.header.get("NAXIS", 0))
    shape = [int(hdu.header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    return bool(shape) and min(shape) > 0 and sum(n > 1 for n in shape) == 2


def _pixels(hdu: fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU) -> np.ndarray:
    """Scaled float32 pixels, NaN for BLANK integers and non-finite values.

    The file is opened unscaled, so BLANK is compared with the stored integers
    (exactly) before BSCALE/BZERO are applied in float64.
    """
    raw = np.asarray(hdu.data)
    if raw.ndim > 2:  # e.g. (1, H, W): `_is_image` allows only two axes longer than 1
        raw = raw.reshape([n for n in raw.shape if n > 1])
    header = hdu.header
    bscale, bzero = pixel_scaling(header)
    if np.issubdtype(raw.dtype, np.integer):
        data = raw.astype(np.float64) * bscale + bzero
        blank = header.get("BLANK")
        if isinstance(blank, int) and not isinstance(blank, bool):
            data[raw == blank] = np.nan
        data = data.astype(np.float32)
    else:
        data = raw.astype(np.float32)
        if bscale != 1.0 or bzero != 0.0:
            data = (data.astype(np.float64) * bscale + bzero).astype(np.float32)
    data[~np.isfinite(data)] = np.nan
    return data


def _bad_mask(hdul: fits.HDUList, shape: tuple[int, int], name: str) -> np.ndarray | None:
    for hdu in hdul[1:]:
        if str(hdu.header.get("EXTNAME", "")).strip().upper() in _MASK_EXTNAMES and _is_image(hdu):
            mask = np.asarray(hdu.data).squeeze()
            if mask.shape != shape:
                raise InputError(
                    f"{name}: the {hdu.name} extension has shape {mask.shape}, the image "
                    f"{shape}; remove the extension or fix its size."
                )
            return mask != 0
    return None


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class _Calib:
    data: np.ndarray
    label: str


def _resolve_calibration(value: Calibration, what: str) -> _Calib | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.ndim != 2:
            raise InputError(f"the {what} array must be 2-D, not shape {value.shape}.")
        return _Calib(np.asarray(value, dtype=np.float32), f"{what} array")
    path = Path(value)
    try:
        with fits.open(path, do_not_scale_image_data=True) as hdul:
            hdu = next((h for h in hdul if _is_image(h)), None)
            if hdu is None:
                raise InputError(f"{path.name}: the {what} file holds no 2-D image.")
            data = _pixels(hdu)
    except (OSError, ValueError) as err:
        raise InputError(f"{path.name}: cannot read the {what} file ({err}).") from err
    return _Calib(data, f"{what} file {path.name}")


class _CalibrationShapeError(InputError):
    """A frame's shape differs from its calibration's: not a raw frame of that camera."""


def _calibrate(
    data: np.ndarray,
    saturation: float | None,
    bias: _Calib | None,
    flat: _Calib | None,
    name: str,
) -> tuple[np.ndarray, float | None]:
    """``(data - bias) / flat``; the saturation level follows, conservatively.

    A scalar level cannot follow a pixel-dependent calibration exactly, so the
    lowest calibrated level of a saturated pixel is kept: every saturated
    pixel stays flagged, at the cost of a few near-saturated ones.
    """
    for calib in (bias, flat):
        if calib is not None and calib.data.shape != data.shape:
            raise _CalibrationShapeError(
                f"{name}: image shape {data.shape} differs from the {calib.label} shape "
                f"{calib.data.shape}; use calibration frames from the same detector and binning."
            )
    if bias is None and flat is None:  # nothing to calibrate: the level stays as it is
        return data.astype(np.float32, copy=False), saturation
    level = None if saturation is None else np.full(data.shape, saturation, dtype=np.float64)
    if bias is not None:
        data = data - bias.data
        level = None if level is None else level - bias.data
    if flat is not None:
        good = np.isfinite(flat.data) & (flat.data > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.where(good, data / flat.data, np.nan)
            level = None if level is None else np.where(good, level / flat.data, np.nan)
    if level is not None:
        finite = level[np.isfinite(level)]
        saturation = float(finite.min()) if finite.size else None
    return data.astype(np.float32, copy=False), saturation


# --------------------------------------------------------------------------- frames


def _open_error(name: str, err: Exception) -> InputError:
    # Only the library's first clause: its advice (e.g. astropy's
    # "try with ignore_missing_simple=True") is for programmers, not users.
    reason = str(err).split(". ")[0].split(", this file")[0].strip().rstrip(".")
    return InputError(
        f"{name}: not a readable FITS file ({reason}); check that it is a FITS image "
        "(.fits, .fits.gz or .fits.fz) and not truncated"
    )


def _trimmed(
    data: np.ndarray, header: fits.Header, wcs: WCS | None, name: str
) -> tuple[tuple[slice, slice] | None, np.ndarray, WCS | None]:
    """The sky part of a raw frame (``TRIMSEC``/``DATASEC``), its WCS moved to match.

    The header copy's ``CRPIXi`` and ``LTVi`` move too, so it describes the
    trimmed pixels and `Frame.origin` keeps their place on the detector.
    """
    section = data_section(header, data.shape, name=name)
    if section is None:
        return None, data, wcs
    for axis, start in ((1, section[1].start), (2, section[0].start)):
        header[f"LTV{axis}"] = float(header.get(f"LTV{axis}", 0.0) or 0.0) - start
        crpix = header.get(f"CRPIX{axis}")
        if crpix is not None:
            header[f"CRPIX{axis}"] = float(crpix) - start
    return section, data[section], None if wcs is None else wcs.slice(section)


def _load_frame(
    path: Path,
    bias: _Calib | None,
    flat: _Calib | None,
    *,
    allow_no_wcs: bool = False,
    allow_no_time: bool = False,
) -> Frame:
    name = path.name
    if not path.is_file():
        raise InputError(f"{name}: no such file ({path}).")
    try:
        hdul = fits.open(path, do_not_scale_image_data=True)
    except Exception as err:  # astropy raises OSError, ValueError, gzip errors, ...
        raise _open_error(name, err) from err
    with hdul:
        try:
            images = [
                h
                for h in hdul
                if _is_image(h)
                and str(h.header.get("EXTNAME", "")).strip().upper() not in _AUX_EXTNAMES
            ]
        except Exception as err:
            raise _open_error(name, err) from err
        if not images:
            raise InputError(
                f"{name}: no image data (no HDU holds a 2-D image); point AstroHunter at the "
                "science frames."
            )
        chosen = next(((h, w) for h in images if (w := celestial_wcs(h.header, fobj=hdul))), None)
        if chosen is None and allow_no_wcs:
            chosen = (images[0], None)
        if chosen is None:
            also = ""
            try:
                mid_exposure_mjd([images[0].header, hdul[0].header], name=name, exptime=0.0)
            except InputError:
                also = " It also has no readable observation time (DATE-OBS, MJD-OBS, ...)."
            raise InputError(
                f"{name}: no celestial WCS (CTYPE/CRVAL/CRPIX/CD keywords) in any image HDU. "
                "Plate-solve the frame first (e.g. astrometry.net or SCAMP) and keep the "
                f"solution in its header.{also}"
            )
        hdu, wcs = chosen
        try:
            data = _pixels(hdu)
        except Exception as err:
            raise _open_error(name, err) from err
        headers = [hdu.header] if hdu is hdul[0] else [hdu.header, hdul[0].header]
        if wcs is not None:
            check_wcs(wcs, data.shape, name=name)
        exptime = exposure_time(headers)
        try:
            mjd = mid_exposure_mjd(headers, name=name, exptime=exptime)
        except InputError:
            if not allow_no_time:
                raise
            mjd = math.nan  # a deep coadd: many times, none its own
        values = instrument_values(headers, exptime=exptime)
        bad = _bad_mask(hdul, data.shape, name)
        header = hdu.header.copy()
    raw_shape = data.shape
    section, data, wcs = _trimmed(data, header, wcs, name)
    if section is not None:
        bias, flat = (_cut(c, raw_shape, section) for c in (bias, flat))
        bad = None if bad is None else bad[section]
    data, saturation = _calibrate(data, values.saturation, bias, flat, name)
    finite = np.isfinite(data)
    if not finite.any():
        raise InputError(
            f"{name}: every pixel is NaN or blank (after calibration); nothing to search."
        )
    if np.nanmin(data) == np.nanmax(data):
        raise InputError(
            f"{name}: the image is constant ({float(np.nanmax(data)):g} everywhere); "
            "the exposure is empty or the calibration cancelled it."
        )
    return Frame(
        data=data,
        wcs=wcs,
        mjd=mjd,
        exptime=exptime,
        name=name,
        gain=values.gain,
        read_noise=values.read_noise,
        saturation=saturation,
        zero_point=values.zero_point,
        filter=values.filter,
        observatory_code=values.observatory_code,
        bad=bad,
        header=header,
        origin=detector_origin(header),
    )


def _cut(calib: _Calib | None, raw_shape: tuple[int, int], section: tuple[slice, slice]):
    """Calibration of the untrimmed frame's shape, trimmed like it (else as given)."""
    if calib is None or calib.data.shape != raw_shape:
        return calib
    return _Calib(calib.data[section], calib.label)


def load_frame(
    path: str | os.PathLike,
    *,
    bias: Calibration = None,
    flat: Calibration = None,
    allow_no_wcs: bool = False,
) -> Frame:
    """Read one exposure into a `Frame`.

    The first image HDU with a celestial WCS is used (single-HDU, MEF,
    ``.fits.gz`` and tile-compressed ``.fits.fz``); a ``DQ``/``MASK``
    extension becomes ``Frame.bad``. The time is read from the raw header
    (never from astropy's WCS, whose "datfix" turns a date-only DATE-OBS into
    midnight) and converted to UTC MJD at mid-exposure.

    Parameters
    ----------
    path : str or path
        The FITS file.
    bias, flat : ndarray or str or path, keyword-only, optional
        Calibration of the same shape as the image, as an array or a FITS
        file: ``data = (data - bias) / flat``. Pixels with a non-positive
        flat become NaN. ``Frame.saturation`` is moved to the calibrated
        scale. Calibration of the raw (untrimmed) shape is trimmed with the frame.
    allow_no_wcs : bool, keyword-only
        Read a frame without a celestial WCS (``Frame.wcs`` None) instead of
        refusing it; the search then registers it on the stars.

    Returns
    -------
    Frame
        ``data`` is float32 ADU with NaN where there is no data (BLANK,
        non-finite), cut to ``TRIMSEC`` (else ``DATASEC``) when the header
        has one, so prescan and overscan are gone (the WCS and
        ``Frame.origin`` follow); header values that are absent are None.

    Raises
    ------
    InputError
        Not a FITS file, no 2-D image, no usable celestial WCS (unless
        ``allow_no_wcs``), no time, an all-NaN or constant image, a bad
        ``TRIMSEC``, or calibration of another shape. The message names the file.
    """
    return _load_frame(
        Path(path),
        _resolve_calibration(bias, "bias"),
        _resolve_calibration(flat, "flat"),
        allow_no_wcs=allow_no_wcs,
    )


def load_frames(
    paths: Sequence[str | os.PathLike],
    *,
    bias: Calibration = None,
    flat: Calibration = None,
    on_error: Literal["raise", "skip"] = "raise",
    progress: Callable[[int, int], None] | None = None,
    allow_no_wcs: bool = False,
) -> LoadResult:
    """Read many exposures, sorted by time, raising or skipping on bad files.

    Every file is tried, so one error lists all the bad files at once.
    Calibration files are read once.

    Parameters
    ----------
    paths : sequence of str or path
        FITS files (see `expand_paths` for folders and patterns).
    bias, flat : ndarray or str or path, keyword-only, optional
        As in `load_frame`.
    on_error : {"raise", "skip"}, keyword-only
        ``"raise"``: any unreadable file raises. ``"skip"``: it is left
        out with a `SkippedFileWarning` and listed in ``skipped``.
    progress : callable, keyword-only, optional
        ``progress(done, total)`` after each file.
    allow_no_wcs : bool, keyword-only
        As in `load_frame`.

    Returns
    -------
    LoadResult
        ``.frames`` (sorted by mid-exposure MJD) and ``.skipped``
        (``(file name, reason)``); it also acts as the sequence of frames.

    Raises
    ------
    InputError
        With ``on_error="raise"``, a file that cannot be read (the message
        lists every such file); in both modes, unreadable calibration.
    """
    if on_error not in ("raise", "skip"):
        raise InputError(f"on_error must be 'raise' or 'skip', not {on_error!r}.")
    bias_c = _resolve_calibration(bias, "bias")
    flat_c = _resolve_calibration(flat, "flat")
    frames: list[Frame] = []
    skipped: list[tuple[str, str]] = []

    def read(path: str | os.PathLike) -> Frame | InputError:
        try:
            return _load_frame(Path(path), bias_c, flat_c, allow_no_wcs=allow_no_wcs)
        except InputError as err:
            return err

    # Two files at a time: decompression, byte swapping and conversion release the GIL.
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        for done, (path, result) in enumerate(
            zip(paths, pool.map(read, paths), strict=True), start=1
        ):
            if isinstance(result, InputError):
                name, reason = Path(path).name, str(result)
                skipped.append((name, reason.removeprefix(f"{name}: ")))
            else:
                frames.append(result)
            if progress:
                progress(done, len(paths))
    if skipped and on_error == "raise":
        listing = "; ".join(f"{name}: {reason}" for name, reason in skipped)
        if len(skipped) == 1:
            raise InputError(f"{listing}. Fix or remove it, or leave it out with --skip-bad.")
        raise InputError(
            f"{len(skipped)} of {len(paths)} files cannot be used: {listing}. "
            "Fix or remove them, or leave them out with --skip-bad."
        )
    for name, reason in skipped:
        warnings.warn(f"skipped {name}: {reason}", SkippedFileWarning, stacklevel=2)
    frames.sort(key=lambda frame: frame.mjd)
    return LoadResult(frames=frames, skipped=skipped)


def load_template(
    paths: Sequence[str | os.PathLike], *, bias: Calibration = None, flat: Calibration = None
) -> list[Frame]:
    """Read the frames of a template from another night (or one deep coadd).

    Like `load_frames`, but a coadd may have no observation time of its own
    (``Frame.mjd`` is then NaN); every file needs a celestial WCS, since the
    template is placed on the sequence by it. ``bias`` and ``flat`` (the
    sequence's) calibrate the raw frames of the same camera, those of their
    shape; a coadd or another camera's reduced frames are taken as they are.

    Raises
    ------
    InputError
        A file that cannot be read or has no WCS; the message names each.
    """
    bias_c, flat_c = _resolve_calibration(bias, "bias"), _resolve_calibration(flat, "flat")
    frames, errors = [], []
    for path in paths:
        try:
            try:
                frames.append(_load_frame(Path(path), bias_c, flat_c, allow_no_time=True))
            except _CalibrationShapeError:
                frames.append(_load_frame(Path(path), None, None, allow_no_time=True))
        except InputError as err:
            errors.append(f"template {err}")
    if errors:
        raise InputError("; ".join(errors))
    if not frames:
        raise InputError("--template: no FITS files found")
    return frames


def check_frames(
    frames: Sequence[Frame],
    *,
    skipped: Sequence[tuple[str, str]] = (),
    min_frames: int = 3,
) -> None:
    """Check that frames make one searchable sequence, before any work is done.

    Parameters
    ----------
    frames : sequence of Frame
        The frames to search (e.g. ``load_frames(...).frames``).
    skipped : sequence of (str, str), keyword-only
        Files already rejected, named in the "too few frames" message.
    min_frames : int, keyword-only
        Fewest frames a track needs.

    Raises
    ------
    InputError
        Fewer than ``min_frames`` frames; two frames whose fields differ (the
        centre of one lies outside the other); two frames with the same time.
    """
    if len(frames) < min_frames:
        message = f"need at least {min_frames} usable frames, found {len(frames)}"
        if skipped:
            rejected = "; ".join(f"{name}: {reason}" for name, reason in skipped)
            message += f" ({len(skipped)} rejected: {rejected})"
        raise InputError(message + ". Add more exposures of the same field.")
    # Frames without a WCS are checked by registration, which refuses another field.
    placed = [(f, f.wcs) for f in frames if f.wcs is not None]
    centres = np.array(
        [w.all_pix2world([[(f.shape[1] - 1) / 2, (f.shape[0] - 1) / 2]], 0)[0] for f, w in placed]
    ).reshape(-1, 2)
    for host, host_wcs in placed:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                xy = host_wcs.all_world2pix(centres, 0, quiet=True)
            except Exception:  # no convergence far outside the field
                xy = np.full_like(centres, np.nan)
        h, w = host.shape
        inside = (
            (xy[:, 0] >= -0.5) & (xy[:, 0] <= w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= h - 0.5)
        )
        outside = np.flatnonzero(~inside)
        if outside.size:
            other = placed[int(outside[0])][0]
            ra, dec = centres[outside[0]]
            raise InputError(
                f"{other.name} and {host.name} show different fields: the centre of "
                f"{other.name} (RA {ra:.4f}, Dec {dec:.4f}) falls outside {host.name}. "
                "Search one field at a time."
            )
    order = np.argsort([f.mjd for f in frames], kind="stable")
    mjds = np.array([frames[int(i)].mjd for i in order])
    same = np.flatnonzero(np.diff(mjds) < _SAME_TIME_DAYS)
    if same.size:
        a, b = frames[int(order[same[0]])], frames[int(order[same[0] + 1])]
        raise InputError(
            f"{a.name} and {b.name} have the same time (MJD {a.mjd:.6f}); one is probably a "
            "copy of the other. Remove the duplicate."
        )


# --------------------------------------------------------------------------- writers


def _atomic_write(path: Path, write: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_fits(path: str | os.PathLike, data: np.ndarray, header: fits.Header) -> Path:
    """Write one image HDU; ``.fits.gz`` / ``.fits.fz`` names are compressed."""
    name = str(path)

    def write(tmp: Path) -> None:
        if name.endswith(".fz"):
            hdus = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)])
        else:
            hdus = fits.HDUList([fits.PrimaryHDU(data, header)])
        if name.endswith(".gz"):
            with gzip.open(tmp, "wb") as fh:
                hdus.writeto(fh)
        else:
            hdus.writeto(tmp, overwrite=True)

    return _atomic_write(Path(path), write)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON."""
    return _atomic_write(Path(path), lambda tmp: tmp.write_text(json.dumps(obj, indent=1) + "\n"))


def write_simulated_field(field: Any, outdir: str | os.PathLike) -> tuple[Path, Path]:
    """Write a :class:`detectors.simulate.SimulatedField` as a user would get it.

    Frames go to ``OUTDIR/frames/`` and the truth to ``OUTDIR/truth.json``,
    beside the frames rather than among them, so that searching the frames
    folder never reads the answer. Frames of a template night, if any, go
    to ``OUTDIR/template/``.

    Returns
    -------
    frames_dir, truth_path : Path
    """
    outdir = Path(outdir)
    frames_dir = outdir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for name, data, header in field.frames:
        write_fits(frames_dir / name, data, header)
    if field.template:
        (outdir / "template").mkdir(exist_ok=True)
    for name, data, header in field.template:
        write_fits(outdir / "template" / name, data, header)
    return frames_dir, write_json(outdir / "truth.json", field.truth)


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image as PNG (cutouts and overlays).

    A picture of at most 256 colours (grey stamps and the no-data colour) is
    written with a palette, exactly: half the bytes of RGB, and what a page
    of many stamps needs to load quickly. Compression is zlib's fastest
    level: sky noise does not compress further, and level 6 takes 4 times
    as long for a file no smaller.
    """
    from PIL import Image

    image = Image.fromarray(rgb, "RGB")
    colours = image.getcolors(256)
    if colours is not None:
        image = _indexed(rgb, np.array([c for _, c in colours], dtype=np.uint8))
    return _atomic_write(Path(path), lambda tmp: image.save(tmp, format="PNG", compress_level=1))


def _indexed(rgb: np.ndarray, colours: np.ndarray) -> Any:
    """The palette image of ``rgb``, whose colours are all among ``colours`` (K <= 256, 3)."""
    from PIL import Image

    def packed(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.uint32)
        return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]

    keys = packed(colours)
    if rgb.shape[0] * rgb.shape[1] < 1 << 20:  # a stamp: a search among its colours
        order = np.argsort(keys)
        index = order[np.searchsorted(keys[order], packed(rgb))].astype(np.uint8)
    else:  # a sheet or an overview: one lookup table for all pixels, 16 MB
        lookup = np.zeros(1 << 24, dtype=np.uint8)
        lookup[keys] = np.arange(len(colours), dtype=np.uint8)
        index = lookup[packed(rgb)]
    image = Image.fromarray(index, "P")
    image.putpalette(colours.ravel().tolist())
    return image


def save_fast_result(path: str | os.PathLike, fast: FastResult) -> Path:
    """Write a :class:`detectors.types.FastResult` for the detailed detector (the work file).

    The fast and detailed detectors may run on different hosts; what passes
    between them is this one uncompressed ``.npz`` in the shared data folder
    (the broker only carries the job id): the candidate lists, the template,
    and the tiles of the maps around the candidates (`detectors.handoff`).
    """
    d, c = fast.differences, fast.candidates
    tiles = cut_tiles(fast)
    lengths = np.array([t.size for t in fast.tracklets], dtype=np.int64)
    members = np.concatenate(fast.tracklets) if fast.tracklets else np.zeros(0, dtype=np.int64)
    reg, sky, seeds = fast.registration, fast.sky, fast.faint
    meta = {
        "ref": fast.ref,
        "zero_point": fast.zero_point,
        "timings": fast.timings,
        "devices": fast.devices,
        "limits": fast.limits,
        "faint": None
        if seeds is None
        else {k: getattr(seeds, k) for k in _SEED_VALUES} | {"count": len(seeds)},
        "tiles": {"shape": tiles.shape, "size": tiles.size},
        "wcs": None if fast.wcs is None else fast.wcs.to_header(relax=True).tostring(),
        "sky": None
        if sky is None
        else {"astrometry": sky.astrometry, "pixel_scale": sky.pixel_scale, "note": sky.note},
        "registration": None if reg is None else {"ref": reg.ref, "method": reg.method},
        "template": fast.template,
    }
    arrays = {
        "tile_index": tiles.index,
        "tile_diff": tiles.diff,
        "tile_psi": tiles.psi,
        "tile_phi": tiles.phi,
        "template": to_numpy(d.template),
        "scale": d.scale,
        "psf_sigma": d.psf_sigma,
        "noise": d.noise,
        "mjd": fast.mjd,
        "tracklet_lengths": lengths,
        "tracklet_members": members,
        "meta": np.array(json.dumps(meta)),
        **{f"cand_{k}": getattr(c, k) for k in ("frame", "y", "x", "flux", "snr")},
        **_mover_arrays(fast.slow),
    }
    if tiles.kept is not None and tiles.kept_rows is not None:
        arrays["tile_kept"] = np.packbits(tiles.kept, axis=-1)
        arrays["tile_kept_rows"] = tiles.kept_rows
    if seeds is not None:
        arrays.update({f"seed_{k}": getattr(seeds, k) for k in _SEED_ARRAYS})
    if reg is not None:
        arrays.update({f"reg_{k}": getattr(reg, k) for k in _REGISTRATION_ARRAYS})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return _atomic_write(Path(path), write)


_SEED_ARRAYS = ("y", "x", "vy", "vx", "stacked", "noise")
_SEED_VALUES = ("step", "trajectories", "motions", "threshold", "binning", "rate_max", "limited_by")
_REGISTRATION_ARRAYS = ("grid_y", "grid_x", "map_y", "map_x", "origin", "stars", "rms_px")
_MOVER_ARRAYS = ("frames", "x", "y", "err", "flux", "snr")


def _mover_arrays(movers: list[Mover]) -> dict[str, np.ndarray]:
    """Slow movers as flat arrays: per-frame values end to end, with each mover's length."""
    out = {
        f"slow_{k}": np.concatenate([getattr(m, k) for m in movers]) if movers else np.zeros(0)
        for k in _MOVER_ARRAYS
    }
    out["slow_lengths"] = np.array([m.frames.size for m in movers], dtype=np.int64)
    out["slow_stacked"] = np.array([m.stacked for m in movers], dtype=float)
    out["slow_vel"] = np.array([m.vel for m in movers], dtype=float).reshape(-1, 2)
    return out


def _movers(z: Any) -> list[Mover]:
    bounds = np.cumsum(z["slow_lengths"])[:-1]
    per_frame = {k: np.split(z[f"slow_{k}"], bounds) for k in _MOVER_ARRAYS}
    return [
        Mover(
            **{k: v[i] for k, v in per_frame.items()},
            stacked=float(z["slow_stacked"][i]),
            vel=(float(z["slow_vel"][i, 0]), float(z["slow_vel"][i, 1])),
        )
        for i in range(z["slow_lengths"].size)
    ]


def load_fast_result(path: str | os.PathLike) -> FastResult:
    """Read what :func:`save_fast_result` wrote (NumPy arrays; the maps whole again).

    Outside the saved tiles the maps hold no data (NaN differences, zero psi
    and phi): the detailed detector does not read there.
    """
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if "tiles" not in meta:
            raise InputError(
                f"{path}: a work file written before the fast/detailed split (whole maps, no "
                "tiles); run the search again"
            )
        shape = tuple(meta["tiles"]["shape"])
        tiles = Tiles(
            shape=(shape[0], shape[1], shape[2]),
            size=meta["tiles"]["size"],
            index=z["tile_index"],
            diff=z["tile_diff"],
            psi=z["tile_psi"],
            phi=z["tile_phi"],
            kept=(
                np.unpackbits(z["tile_kept"], axis=-1, count=meta["tiles"]["size"]).astype(bool)
                if "tile_kept" in z.files
                else None
            ),
            kept_rows=z["tile_kept_rows"] if "tile_kept_rows" in z.files else None,
        )
        n = shape[0]
        empty = np.zeros((n, 0, 0), dtype=np.float32)
        diffs = Differences(
            diff=empty, psi=empty, phi=empty, template=z["template"], scale=z["scale"],
            psf_sigma=z["psf_sigma"], noise=z["noise"],
        )  # fmt: skip
        cands = Candidates(**{k: z[f"cand_{k}"] for k in ("frame", "y", "x", "flux", "snr")})
        bounds = np.cumsum(z["tracklet_lengths"])[:-1]
        tracklets = np.split(z["tracklet_members"], bounds) if z["tracklet_lengths"].size else []
        mjd = z["mjd"]
        reg = meta["registration"]
        registration = (
            None
            if reg is None
            else Registration(
                ref=reg["ref"],
                method=reg["method"],
                **{k: z[f"reg_{k}"] for k in _REGISTRATION_ARRAYS},
            )
        )
        seeds = meta["faint"]
        faint = (
            None
            if seeds is None
            else FaintSeeds(
                **{k: z[f"seed_{k}"] for k in _SEED_ARRAYS},
                **{k: seeds[k] for k in _SEED_VALUES},
            )
        )
        slow = _movers(z)
    wcs = None if meta["wcs"] is None else WCS(fits.Header.fromstring(meta["wcs"]))
    sky = meta["sky"]
    fast = FastResult(
        mjd=mjd,
        wcs=wcs,
        ref=meta["ref"],
        zero_point=meta["zero_point"],
        differences=diffs,
        candidates=cands,
        tracklets=list(tracklets),
        timings=meta["timings"],
        limits=meta["limits"],
        registration=registration,
        sky=None if sky is None else SkySolution(wcs=wcs, **sky),
        template=meta.get("template", {}),
        slow=slow,
        faint=faint,
        devices=meta["devices"],
    )
    return from_tiles(fast, tiles, diffs.template)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (the MPC report)."""
    return _atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write a file's bytes as they are (a picture fetched from the API)."""
    return _atomic_write(Path(path), lambda tmp: tmp.write_bytes(data))


def write_star_list(
    path: str | os.PathLike, x: np.ndarray, y: np.ndarray, flux: np.ndarray
) -> Path:
    """Write stars as a FITS table ``X``, ``Y`` (1-based FITS pixels), ``FLUX``.

    The "xylist" astrometry.net's ``solve-field`` reads instead of an image,
    so it solves our star catalogue rather than extracting its own.
    """
    columns = [
        fits.Column(name=name, format="D", array=np.asarray(values, dtype=float))
        for name, values in (("X", np.asarray(x) + 1.0), ("Y", np.asarray(y) + 1.0), ("FLUX", flux))
    ]
    table = fits.BinTableHDU.from_columns(columns)
    return _atomic_write(Path(path), lambda tmp: table.writeto(tmp, overwrite=True))


def read_wcs_file(path: str | os.PathLike) -> WCS | None:
    """The celestial WCS in a header-only FITS file (a plate solver's ``.wcs``), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        header = fits.getheader(path)
    except (OSError, ValueError):
        return None
    return celestial_wcs(header)
