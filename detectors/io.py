"""Everything that touches files: FITS frames in, tracks and reports out.

Readers turn one FITS file into a `Frame` whatever the header dialect: the
time is normalised to UTC MJD at mid-exposure, the WCS is built from the raw
header after repairing the quirks that make astropy silently build a wrong
one, and every problem is an `InputError` that names the file and the fix.

Writers go through a temporary name and an atomic rename, so a crash never
leaves a half-written result where a user (or the next stage) would read it.
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .errors import InputError
from .types import Frame

__all__ = [
    "FITS_SUFFIXES",
    "LoadResult",
    "SkippedFileWarning",
    "check_frames",
    "expand_paths",
    "load_frame",
    "load_frames",
    "write_fits",
    "write_json",
    "write_simulated_field",
    "write_text",
]

#: File endings a folder is searched for (compared case-insensitively).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz", ".fit.gz")

Calibration = np.ndarray | str | os.PathLike | None

_MID_KEYS = ("MJD-AVG", "DATE-AVG", "MIDTIMJD")
_START_TIME_KEYS = ("TIME-OBS", "UT", "UTSTART", "UTCSTART", "UTC-OBS")
_TIME_KEYS_TRIED = (
    "DATE-AVG, MJD-AVG, MIDTIMJD (mid-exposure); DATE-OBS with a time, MJD-OBS, JD-OBS, JD, "
    f"or a date-only DATE-OBS plus {'/'.join(_START_TIME_KEYS)} (exposure start)"
)
_EXPTIME_KEYS = ("EXPTIME", "EXPOSURE", "XPOSURE", "ITIME")
_GAIN_KEYS = ("GAIN", "EGAIN", "GAINEFF", "AGAIN_01", "CCDGAIN")
_RDNOISE_KEYS = ("RDNOISE", "READNOIS", "RON", "ARDNS_01", "READNOISE")
_SATURATION_KEYS = ("SATURATE", "SATLEVEL", "SATURATION", "MAXLIN")
_ZP_KEYS = ("MAGZP", "MAGZPT", "PHOTZP", "ZP", "ZEROPT")
_FILTER_KEYS = ("FILTER", "FILTNAME", "FILTER1")
_OBSCODE_KEYS = ("MPCCODE", "OBSCODE", "SITECODE")
#: Headroom below 65535 for unsigned 16-bit data without a saturation keyword.
_UINT16_MARGIN = 500.0
#: Frames closer in time than this (days) are taken to be the same exposure.
_SAME_TIME_DAYS = 0.5 / 86400.0
#: A WCS coarser than this (deg/pixel) is a default identity, not a solution.
_MAX_PIXEL_SCALE_DEG = 0.5

# WCS keywords some writers store as quoted strings, which astropy ignores.
_NUMERIC_WCS_KEY = re.compile(
    r"^(?:(?:CRVAL|CRPIX|CDELT|CROTA)\d+|(?:CD|PC|PV)\d+_\d+|(?:A|B|AP|BP)_(?:\d+_\d+|ORDER|DMAX)"
    r"|EQUINOX|EPOCH|LONPOLE|LATPOLE)[A-Z]?$"
)
_AUX_EXTNAMES = {"DQ", "MASK", "BPM", "ERR", "VAR", "VARIANCE", "WHT", "WEIGHT", "SIGMA"}
_MASK_EXTNAMES = ("DQ", "MASK")
_PER_SECOND = re.compile(r"per\s*s(?:ec(?:ond)?)?\b|/\s*s(?:ec)?\b|\b1\s*s(?:ec)?\b", re.I)
_TIME_SCALES = {
    "UTC": "utc",
    "UT": "utc",
    "Z": "utc",
    "TT": "tt",
    "TDT": "tt",
    "ET": "tt",
    "TAI": "tai",
    "IAT": "tai",
    "TDB": "tdb",
    "TCG": "tcg",
    "TCB": "tcb",
    "GPS": "tai",  # GPS = TAI - 19 s, corrected below
}


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


# --------------------------------------------------------------------------- header values


def _number(value: Any) -> float | None:
    """A header value as a finite float (numbers stored as text included), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _lookup(headers: Sequence[fits.Header], keys: Sequence[str]) -> tuple[str, Any, str] | None:
    """First ``(key, value, comment)`` present in the image header, then the primary one."""
    for header in headers:
        for key in keys:
            if key in header and header[key] is not None and str(header[key]).strip() != "":
                return key, header[key], header.comments[key]
    return None


def _positive(headers: Sequence[fits.Header], keys: Sequence[str]) -> float | None:
    for header in headers:
        for key in keys:
            number = _number(header.get(key))
            if number is not None and number > 0:
                return number
    return None


def _text(headers: Sequence[fits.Header], keys: Sequence[str]) -> str | None:
    found = _lookup(headers, keys)
    return None if found is None else str(found[1]).strip()


# --------------------------------------------------------------------------- time


def _clock_seconds(value: Any) -> float | None:
    """Seconds after midnight from ``hh:mm:ss.s`` / ``hh mm ss`` text or decimal hours."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * 3600.0 if 0 <= value < 24 else None
    parts = re.split(r"[:\s]+", str(value).strip())
    try:
        if len(parts) == 1:
            hours = float(parts[0])
            return hours * 3600.0 if 0 <= hours < 24 else None
        h, m = int(parts[0]), int(parts[1])
        s = float(parts[2]) if len(parts) > 2 else 0.0
    except ValueError:
        return None
    if len(parts) > 3 or not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
        return None
    return h * 3600.0 + m * 60.0 + s


def _split_date(value: str) -> tuple[str, str]:
    """``(YYYY-MM-DD, time part or "")`` from ISO text or the old ``DD/MM/YY`` form."""
    text = value.strip()
    old = re.fullmatch(r"(\d\d)/(\d\d)/(\d\d)", text)
    if old:
        day, month, year = old.groups()
        return f"19{year}-{month}-{day}", ""
    date, _, clock = text.replace(" ", "T", 1).partition("T")
    return date, clock.rstrip("Z")


def _to_utc_mjd(value: float | str, fmt: str, scale: str, timesys: str) -> float:
    time = Time(value, format=fmt, scale=scale)
    if timesys == "GPS":
        time = time + TimeDelta(19.0, format="sec")
    return float(time.utc.mjd)


def _read_time(headers: Sequence[fits.Header], name: str, exptime: float) -> float:
    """UTC MJD at mid-exposure from the raw header (never from astropy's WCS).

    Mid-exposure keywords are used as they are; start times get half the
    exposure added. A date-only DATE-OBS needs a separate start-time keyword.
    """
    timesys = (_text(headers, ("TIMESYS",)) or "UTC").upper()
    if timesys not in _TIME_SCALES:
        raise InputError(
            f"{name}: TIMESYS = '{timesys}' is not a time scale AstroHunter can convert; "
            f"use one of {', '.join(_TIME_SCALES)}."
        )
    scale = _TIME_SCALES[timesys]
    half = exptime / 2.0 / 86400.0

    def convert(value: float | str, fmt: str, key: str) -> float:
        try:
            return _to_utc_mjd(value, fmt, scale, timesys)
        except ValueError as err:
            raise InputError(f"{name}: cannot read {key} = {value!r} as a time ({err}).") from err

    for key in _MID_KEYS:
        found = _lookup(headers, (key,))
        if found is None:
            continue
        value = found[1]
        if key == "DATE-AVG":
            return convert(str(value).strip().rstrip("Z"), "isot", key)
        number = _number(value)
        if number is not None:
            return convert(number, "jd" if key == "MIDTIMJD" else "mjd", key)

    date_obs = _text(headers, ("DATE-OBS",))
    date, clock = _split_date(date_obs) if date_obs else ("", "")
    start_key = _lookup(headers, _START_TIME_KEYS) if date else None
    # A separate start time beats MJD-OBS (possibly a datfix midnight written
    # back by some tool) and a DATE-OBS clock of exactly 00:00:00 (date only).
    if date and clock and (start_key is None or _clock_seconds(clock) != 0.0):
        return convert(f"{date}T{clock}", "isot", "DATE-OBS") + half
    if start_key is not None:
        seconds = _clock_seconds(start_key[1])
        if seconds is None:
            raise InputError(
                f"{name}: cannot read {start_key[0]} = {start_key[1]!r} as a time of day "
                "(expected hh:mm:ss.s or decimal hours)."
            )
        return convert(f"{date}T00:00:00", "isot", "DATE-OBS") + seconds / 86400.0 + half
    for key, fmt in (("MJD-OBS", "mjd"), ("JD-OBS", "jd"), ("JD", "jd")):
        found = _lookup(headers, (key,))
        number = None if found is None else _number(found[1])
        if number is not None:
            return convert(number, fmt, key) + half
    if date:
        raise InputError(
            f"{name}: DATE-OBS = '{date_obs}' has a date but no time, and no start-time "
            f"keyword ({', '.join(_START_TIME_KEYS)}) or MJD-OBS was found. Keywords tried: "
            f"{_TIME_KEYS_TRIED}. Add e.g. DATE-OBS = 'YYYY-MM-DDThh:mm:ss' (exposure start)."
        )
    raise InputError(
        f"{name}: no observation time in the header. Keywords tried: {_TIME_KEYS_TRIED}. "
        "Add e.g. DATE-OBS = 'YYYY-MM-DDThh:mm:ss' (exposure start, UTC)."
    )


# --------------------------------------------------------------------------- WCS


def _repaired_wcs_header(header: fits.Header) -> fits.Header:
    """Copy of ``header`` with numeric WCS text turned into numbers and SCAMP TAN+PV as TPV.

    Astropy skips quoted numbers and falls back to an identity WCS without an
    error. SCAMP writes its polynomial distortion as ``PVi_j`` on a ``TAN``
    projection, meaning TPV; naming it TPV gives that meaning whatever the
    WCSLIB version (WCSLIB 8 already reads TAN+PV as TPV, identically).
    """
    header = header.copy()
    for key in list(header.keys()):
        if _NUMERIC_WCS_KEY.match(key) and isinstance(header[key], str):
            number = _number(header[key])
            if number is not None:
                header[key] = number
    has_pv = any(re.match(r"^PV\d+_\d+$", key) for key in header)
    has_sip = "A_ORDER" in header
    if has_pv and not has_sip:
        for axis in (1, 2):
            ctype = str(header.get(f"CTYPE{axis}", ""))
            if len(ctype) == 8 and ctype.endswith("-TAN"):
                header[f"CTYPE{axis}"] = ctype[:5] + "TPV"
    return header


def _celestial_wcs(header: fits.Header, hdul: fits.HDUList) -> WCS | None:
    with warnings.catch_warnings():
        # FITSFixedWarning (datfix, RADECSYS) and friends: harmless, and we read times ourselves.
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            wcs = WCS(_repaired_wcs_header(header), fobj=hdul).celestial
        except Exception:  # astropy raises many types for malformed WCS keywords
            return None
    return wcs if wcs.has_celestial and wcs.naxis == 2 else None


def _wcs_problem(wcs: WCS, shape: tuple[int, int]) -> str | None:
    """Why ``wcs`` is not a usable sky solution for an image of ``shape``, or None."""
    try:
        scales = proj_plane_pixel_scales(wcs)
        centre = wcs.all_pix2world([[(shape[1] - 1) / 2, (shape[0] - 1) / 2]], 0)
    except Exception as err:  # singular matrices, failed projections
        return f"the WCS cannot be evaluated ({err})"
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        return "the WCS pixel scale is zero or undefined"
    if np.any(scales >= _MAX_PIXEL_SCALE_DEG):
        return (
            f"the WCS pixel scale is {scales.max():g} deg/pixel, a default identity WCS "
            "(missing CD/CDELT keywords, or values astropy could not read)"
        )
    if not np.all(np.isfinite(centre)):
        return "the WCS gives no sky position at the image centre"
    return None


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
    bscale = _number(header.get("BSCALE")) or 1.0
    bzero = _number(header.get("BZERO")) or 0.0
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


def _saturation(headers: Sequence[fits.Header]) -> float | None:
    level = _positive(headers, _SATURATION_KEYS)
    if level is not None:
        return level
    header = headers[0]
    if (
        header.get("BITPIX") == 16
        and _number(header.get("BZERO")) == 32768
        and (_number(header.get("BSCALE")) or 1.0) == 1.0
    ):
        return 65535.0 - _UINT16_MARGIN
    return None


def _zero_point(headers: Sequence[fits.Header], exptime: float) -> float | None:
    """Whole-exposure zero point; a per-second one gets ``2.5 log10(exptime)`` added."""
    for header in headers:
        for key in _ZP_KEYS:
            zp = _number(header.get(key))
            if zp is None or zp <= 0:
                continue
            if _PER_SECOND.search(header.comments[key] or "") and exptime > 0:
                zp += 2.5 * math.log10(exptime)
            return zp
    return None


def _mpc_code(headers: Sequence[fits.Header]) -> str | None:
    code = _text(headers, _OBSCODE_KEYS)
    return code.upper() if code and re.fullmatch(r"[A-Za-z0-9]\d\d", code) else None


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
            raise InputError(
                f"{name}: image shape {data.shape} differs from the {calib.label} shape "
                f"{calib.data.shape}; use calibration frames from the same detector and binning."
            )
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
    return InputError(
        f"{name}: not a readable FITS file ({type(err).__name__}: {err}). "
        "Check that it is a FITS image (.fits, .fits.gz or .fits.fz) and not truncated."
    )


def _load_frame(path: Path, bias: _Calib | None, flat: _Calib | None) -> Frame:
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
        chosen = next(((h, w) for h in images if (w := _celestial_wcs(h.header, hdul))), None)
        if chosen is None:
            also = ""
            try:
                _read_time([images[0].header, hdul[0].header], name, 0.0)
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
        problem = _wcs_problem(wcs, data.shape)
        if problem is not None:
            raise InputError(f"{name}: {problem}. Plate-solve the frame and save the solution.")
        exptime = _positive(headers, _EXPTIME_KEYS) or 0.0
        mjd = _read_time(headers, name, exptime)
        saturation = _saturation(headers)
        bad = _bad_mask(hdul, data.shape, name)
        header = hdu.header.copy()
    data, saturation = _calibrate(data, saturation, bias, flat, name)
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
        gain=_positive(headers, _GAIN_KEYS),
        read_noise=_positive(headers, _RDNOISE_KEYS),
        saturation=saturation,
        zero_point=_zero_point(headers, exptime),
        filter=_text(headers, _FILTER_KEYS) or None,
        observatory_code=_mpc_code(headers),
        bad=bad,
        header=header,
    )


def load_frame(
    path: str | os.PathLike,
    *,
    bias: Calibration = None,
    flat: Calibration = None,
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
        scale.

    Returns
    -------
    Frame
        ``data`` is float32 ADU with NaN where there is no data (BLANK,
        non-finite); header values that are absent are None.

    Raises
    ------
    InputError
        Not a FITS file, no 2-D image, no usable celestial WCS, no time, an
        all-NaN or constant image, or calibration of another shape. The
        message names the file.
    """
    return _load_frame(
        Path(path), _resolve_calibration(bias, "bias"), _resolve_calibration(flat, "flat")
    )


def load_frames(
    paths: Sequence[str | os.PathLike],
    *,
    bias: Calibration = None,
    flat: Calibration = None,
    on_error: Literal["raise", "skip"] = "raise",
    progress: Callable[[int, int], None] | None = None,
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
    for done, path in enumerate(paths, start=1):
        try:
            frames.append(_load_frame(Path(path), bias_c, flat_c))
        except InputError as err:
            name, reason = Path(path).name, str(err)
            skipped.append((name, reason.removeprefix(f"{name}: ")))
        if progress:
            progress(done, len(paths))
    if skipped and on_error == "raise":
        listing = "\n".join(f"  {name}: {reason}" for name, reason in skipped)
        raise InputError(
            f"{len(skipped)} of {len(paths)} files cannot be used:\n{listing}\n"
            "Fix or remove them, or skip them (on_error='skip')."
        )
    for name, reason in skipped:
        warnings.warn(f"skipped {name}: {reason}", SkippedFileWarning, stacklevel=2)
    frames.sort(key=lambda frame: frame.mjd)
    return LoadResult(frames=frames, skipped=skipped)


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
    centres = np.array(
        [f.wcs.all_pix2world([[(f.shape[1] - 1) / 2, (f.shape[0] - 1) / 2]], 0)[0] for f in frames]
    )
    for host in frames:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                xy = host.wcs.all_world2pix(centres, 0, quiet=True)
            except Exception:  # no convergence far outside the field
                xy = np.full_like(centres, np.nan)
        h, w = host.shape
        inside = (
            (xy[:, 0] >= -0.5) & (xy[:, 0] <= w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= h - 0.5)
        )
        outside = np.flatnonzero(~inside)
        if outside.size:
            other = frames[int(outside[0])]
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
    folder never reads the answer.

    Returns
    -------
    frames_dir, truth_path : Path
    """
    outdir = Path(outdir)
    frames_dir = outdir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for name, data, header in field.frames:
        write_fits(frames_dir / name, data, header)
    return frames_dir, write_json(outdir / "truth.json", field.truth)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (the MPC report)."""
    return _atomic_write(Path(path), lambda tmp: tmp.write_text(text))
