"""TESScut cubes unpacked into ordinary 2-D frames (no network here).

A TESScut cutout is a target-pixel-file-like cube, as astrocut writes it: a
primary HDU (``TIMESYS = 'TDB'``, ``BJDREFI``/``BJDREFF``, ``SECTOR``,
``CAMERA``, ``CCD``), a ``PIXELS`` binary table with one row per FFI
cadence (``TIME`` = BTJD, BJD - 2457000 at mid-exposure, barycentric;
``TIMECORR``, the barycentric correction added; ``FLUX`` in e-/s;
``QUALITY``; ``FFI_FILE``; the FFI keywords ``EXPOSURE``, ``TIMEDEL``,
``DEADC``, ``NUM_FRM``, ``READNOIA``...) and an ``APERTURE`` image whose
header holds the cutout's celestial WCS (the image columns carry it too, as
``1CTYP5``/``1CRPX5``/``1CRVL5``/``11PC5``... keywords).

`frames_from_cube` picks a window of good cadences (`choose_cadences`) and
turns each into a frame in electrons (``FLUX x exposure``, ``GAIN = 1``)
with the WCS, ``EXPTIME`` and UTC times at the spacecraft (`cube_times`).
Conventions: times are UTC MJD; images are (H, W) float32 with NaN for no
data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from detectors.errors import InputError
from detectors.headers import celestial_wcs

__all__ = ["DEFAULT_FRAMES", "DEFAULT_HOURS", "choose_cadences", "cube_times", "frames_from_cube"]

_BTJD_REF = 2457000.0
DEFAULT_FRAMES = 15
DEFAULT_HOURS = 4.0
#: Header keywords copied from the cube (primary and PIXELS) to every frame.
_COPY = (
    "TELESCOP",
    "INSTRUME",
    "SECTOR",
    "CAMERA",
    "CCD",
    "RADESYS",
    "EQUINOX",
    "PROCVER",
    "CREATOR",
    "DATA_REL",
    "TIMEDEL",
    "INT_TIME",
    "NUM_FRM",
    "FRAMETIM",
    "DEADC",
    "GAINA",
    "GAINB",
    "GAINC",
    "GAIND",
    "READNOIA",
    "READNOIB",
    "READNOIC",
    "READNOID",
)


def _value(headers: list[fits.Header], key: str, default: Any = None) -> Any:
    for header in headers:
        if key in header and header[key] not in (None, ""):
            return header[key]
    return default


def cube_times(hdul: fits.HDUList) -> np.ndarray:
    """UTC MJD at the spacecraft, mid-exposure, for every row of a TESScut cube.

    ``TIME`` is BTJD (BJD - ``BJDREFI``/``BJDREFF``, barycentric, in
    ``TIMESYS``, TDB); ``TIMECORR`` is the barycentric correction that was
    added, so ``TIME - TIMECORR`` is when the light reached TESS.

    Returns
    -------
    ndarray, shape (N,)
        UTC MJD, NaN where ``TIME`` is missing.
    """
    headers = [hdul[1].header, hdul[0].header]
    table = hdul[1].data
    btjd = np.asarray(table["TIME"], dtype=float)
    corr = (
        np.nan_to_num(np.asarray(table["TIMECORR"], dtype=float))
        if "TIMECORR" in table.names
        else np.zeros_like(btjd)
    )
    ref = float(_value(headers, "BJDREFI", _BTJD_REF)) + float(_value(headers, "BJDREFF", 0.0))
    scale = str(_value(headers, "TIMESYS", "TDB")).strip().lower()
    if scale not in ("tdb", "tt", "utc", "tai"):
        raise InputError(f"tess: TIMESYS = {scale!r} in the cube is not a time scale I know")
    out = np.full(btjd.shape, np.nan)
    ok = np.isfinite(btjd)
    if ok.any():
        out[ok] = Time(btjd[ok] - corr[ok] + ref, format="jd", scale=scale).utc.mjd
    return out


def _exposure_s(headers: list[fits.Header], mjd: np.ndarray) -> float:
    """Seconds of light per cadence: ``EXPOSURE`` if per-cadence, else TIMEDEL x DEADC."""
    timedel = _value(headers, "TIMEDEL")
    if timedel is None:
        steps = np.diff(mjd[np.isfinite(mjd)])
        timedel = float(np.median(steps)) if steps.size else 1800.0 / 86400.0
    exposure = _value(headers, "EXPOSURE")
    if exposure is not None and 0 < float(exposure) <= float(timedel) * 1.01:
        return float(exposure) * 86400.0
    return float(timedel) * float(_value(headers, "DEADC", 0.8)) * 86400.0


#: Time keywords astropy's ``WCS.to_header`` copies along; the frames get their own.
_WCS_TIME_KEYS = ("MJDREF", "DATE-OBS", "MJD-OBS", "DATE-END", "MJD-END", "TSTART", "TSTOP")


def _wcs_keywords(wcs: Any) -> fits.Header:
    header = wcs.to_header(relax=True)
    for key in _WCS_TIME_KEYS:
        header.remove(key, ignore_missing=True, remove_all=True)
    return header


def _cube_wcs(hdul: fits.HDUList) -> fits.Header:
    """The cutout's celestial WCS keywords: from APERTURE, else the FLUX column's."""
    if len(hdul) > 2:
        wcs = celestial_wcs(hdul[2].header)
        if wcs is not None:
            return _wcs_keywords(wcs)
    header = hdul[1].header
    names = [c.name for c in hdul[1].columns]
    if "FLUX" in names:
        n = names.index("FLUX") + 1
        keys = {
            "CTYPE{i}": "{i}CTYP{n}",
            "CRPIX{i}": "{i}CRPX{n}",
            "CRVAL{i}": "{i}CRVL{n}",
            "CDELT{i}": "{i}CDLT{n}",
            "CUNIT{i}": "{i}CUNI{n}",
        }
        built = fits.Header({"WCSAXES": 2})
        for i in (1, 2):
            for image_key, column_key in keys.items():
                key = column_key.format(i=i, n=n)
                if key in header:
                    built[image_key.format(i=i)] = header[key]
            for j in (1, 2):
                if f"{i}{j}PC{n}" in header:
                    built[f"PC{i}_{j}"] = header[f"{i}{j}PC{n}"]
        wcs = celestial_wcs(built)
        if wcs is not None:
            return _wcs_keywords(wcs)
    raise InputError(
        "tess: the TESScut cube has no usable celestial WCS (neither the APERTURE extension "
        "nor the FLUX column keywords)"
    )


def choose_cadences(
    mjd: np.ndarray,
    good: np.ndarray,
    *,
    start: float | None = None,
    end: float | None = None,
    hours: float = DEFAULT_HOURS,
    frames: int = DEFAULT_FRAMES,
) -> tuple[np.ndarray, int]:
    """Which cadences make the frames: a window of good ones, evenly spread.

    The window starts at ``start`` (or the first good cadence) and lasts
    ``hours`` (never past ``end``).

    Parameters
    ----------
    mjd : ndarray, shape (N,)
        UTC MJD of each cadence.
    good : ndarray of bool, shape (N,)
        Usable cadences (QUALITY 0, with data).
    start, end : float or None, keyword-only
        UTC MJD limits of the search's window.
    hours : float, keyword-only
        Longest span of the chosen frames.
    frames : int, keyword-only
        Most frames chosen.

    Returns
    -------
    rows : ndarray of int
        Chosen row indices, in time order.
    flagged : int
        Cadences inside the window left out for flags or missing data.
    """
    usable = good & np.isfinite(mjd)
    if start is not None:
        usable &= mjd >= start
    if end is not None:
        usable &= mjd <= end
    if not usable.any():
        return np.zeros(0, dtype=int), 0
    t0 = float(mjd[usable].min()) if start is None else start
    t1 = t0 + hours / 24.0 if end is None else min(end, t0 + hours / 24.0)
    inside = np.isfinite(mjd) & (mjd >= t0) & (mjd <= t1)
    candidates = np.flatnonzero(inside & usable)
    flagged = int(np.count_nonzero(inside & ~usable))
    if candidates.size > frames:
        pick = np.unique(np.round(np.linspace(0, candidates.size - 1, frames)).astype(int))
        candidates = candidates[pick]
    return candidates, flagged


def frames_from_cube(
    hdul: fits.HDUList,
    *,
    start: float | None = None,
    end: float | None = None,
    hours: float = DEFAULT_HOURS,
    frames: int = DEFAULT_FRAMES,
) -> tuple[list[tuple[str, np.ndarray, fits.Header]], list[str]]:
    """Unpack a TESScut cube into 2-D frames with full headers.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        A TESScut cutout (primary, ``PIXELS`` table, ``APERTURE``).
    start, end, hours, frames : keyword-only
        As in `choose_cadences`.

    Returns
    -------
    frames : list of (str, ndarray, astropy.io.fits.Header)
        File name, float32 image (H, W) in electrons (NaN = no data), header.
    notes : list of str
        The cadences chosen and skipped.
    """
    primary, table_hdu = hdul[0], hdul[1]
    headers = [table_hdu.header, primary.header]
    table = table_hdu.data
    flux = table["FLUX"]  # read row by row: a sector can hold thousands of cadences
    if flux.ndim != 3:
        raise InputError(f"tess: FLUX column has shape {flux.shape}, expected (cadences, H, W)")
    good = (
        np.asarray(table["QUALITY"]) == 0 if "QUALITY" in table.names else np.ones(len(flux), bool)
    )
    mjd = cube_times(hdul)
    while True:
        rows, flagged = choose_cadences(mjd, good, start=start, end=end, hours=hours, frames=frames)
        empty = [r for r in rows if not np.isfinite(flux[r]).any()]
        if not empty:
            break
        good[empty] = False  # no data (off the CCD): choose again without them
    exptime = _exposure_s(headers, mjd)
    wcs_header = _cube_wcs(hdul)
    readnoise = [float(v) for k in "ABCD" if (v := _value(headers, f"READNOI{k}")) is not None]
    num_frm = _value(headers, "NUM_FRM")
    sector = int(_value(headers, "SECTOR", 0) or 0)
    camera, ccd = _value(headers, "CAMERA", 0), _value(headers, "CCD", 0)
    ffi = table["FFI_FILE"] if "FFI_FILE" in table.names else None
    out = []
    for row in rows:
        mid = float(mjd[row])
        header = fits.Header()
        header.update(wcs_header)
        for key in _COPY:
            value = _value(headers, key)
            if value is not None and key not in header:
                header[key] = value
        start_mjd = mid - exptime / 2.0 / 86400.0
        header.update(
            {
                "DATE-OBS": (Time(start_mjd, format="mjd", scale="utc").isot, "UTC exposure start"),
                "MJD-OBS": (start_mjd, "UTC MJD, exposure start"),
                "DATE-AVG": (Time(mid, format="mjd", scale="utc").isot, "UTC mid-exposure"),
                "MJD-AVG": (mid, "UTC MJD, mid-exposure (at the spacecraft)"),
                "TIMESYS": ("UTC", "times converted from BTJD (TDB, barycentric)"),
                "EXPTIME": (exptime, "[s] light collected in the cadence"),
                "GAIN": (1.0, "[e-/ADU] pixels are electrons (FLUX x EXPTIME)"),
                "BUNIT": ("electron", "FLUX [e-/s] x EXPTIME"),
                "FILTER": ("TESS", "TESS band (600-1000 nm)"),
                "BTJD": (float(table["TIME"][row]), "[d] TIME, BJD - 2457000 (TDB)"),
                "TIMECORR": (
                    float(table["TIMECORR"][row]) if "TIMECORR" in table.names else 0.0,
                    "[d] barycentric correction removed",
                ),
                "CADROW": (int(row), "row of the TESScut cube"),
                "ORIGIN": ("MAST TESScut, unpacked by AstroHunter", "data source"),
            }
        )
        if readnoise:
            per_read = float(np.mean(readnoise))
            reads = float(num_frm) if num_frm else 1.0
            header["RDNOISE"] = (per_read * math.sqrt(reads), "[e-] per cadence (co-added reads)")
        if ffi is not None and str(ffi[row]).strip():
            header["FFI_FILE"] = (str(ffi[row]).strip(), "the full-frame image cut")
            stem = str(ffi[row]).strip()
        else:
            stem = f"tess-s{sector:04d}-{camera}-{ccd}-row{int(row):05d}"
        data = (np.asarray(flux[row], dtype=np.float32) * np.float32(exptime)).astype(np.float32)
        out.append((f"{stem}_cutout.fits", data, header))
    first = Time(mjd[rows[0]], format="mjd").isot[:16] if len(rows) else "-"
    notes = [
        f"tess: sector {sector} camera {camera} CCD {ccd}: {len(rows)} cadences from {first} UTC "
        f"over {hours:g} h at most; {flagged} cadences in that span skipped (QUALITY flags or no data)"
    ]
    return out, notes
