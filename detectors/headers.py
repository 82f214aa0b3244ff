"""What a FITS header says about when, where and how an image was taken.

Real headers disagree on how to say it: the time may be mid-exposure or
start, ISO text, MJD or JD, in UTC, TT or GPS, with the date and the clock in
separate keywords; the WCS may hold numbers as quoted text or SCAMP's TAN+PV
distortion; gain, read noise, saturation, zero point, filter and site each go
by several names. This module is where those conventions are decoded, so the
rest of AstroHunter sees one: UTC MJD at mid-exposure, a checked celestial
WCS, and plain numbers in ADU, electrons and seconds (None when absent).

Functions take `astropy.io.fits.Header` objects (the image header first, then
the primary one, for values a multi-extension file keeps in either) and a file
name for error messages; they never touch files, which is `detectors.io`'s job.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .errors import InputError

__all__ = [
    "InstrumentValues",
    "celestial_wcs",
    "check_wcs",
    "data_section",
    "detector_origin",
    "exposure_time",
    "instrument_values",
    "mid_exposure_mjd",
    "pixel_scale_hint",
    "pixel_scaling",
    "pointing_hint",
]

_MID_KEYS = ("MJD-AVG", "DATE-AVG", "MIDTIMJD")
_START_TIME_KEYS = ("TIME-OBS", "UT", "UTSTART", "UTCSTART", "UTC-OBS")
_TIME_KEYS_TRIED = (
    "DATE-AVG, MJD-AVG, MIDTIMJD (mid-exposure); DATE-OBS with a time, MJD-OBS, JD-OBS, JD, "
    f"or a date-only DATE-OBS plus {'/'.join(_START_TIME_KEYS)} (exposure start)"
)
_EXPTIME_KEYS = ("EXPTIME", "EXPOSURE", "AEXPTIME", "XPOSURE", "ITIME")
_GAIN_KEYS = ("GAIN", "EGAIN", "GAINEFF", "AGAIN_01", "CCDGAIN")
_RDNOISE_KEYS = ("RDNOISE", "READNOIS", "RON", "ARDNS_01", "READNOISE")
_SATURATION_KEYS = ("SATURATE", "SATLEVEL", "SATURATION", "MAXLIN")
_ZP_KEYS = ("MAGZP", "MAGZPT", "PHOTZP", "ZP", "ZEROPT")
_FILTER_KEYS = ("FILTER", "FILTNAME", "FILTER1")
_OBSCODE_KEYS = ("MPCCODE", "OBSCODE", "SITECODE")
#: Headroom below 65535 for unsigned 16-bit data without a saturation keyword.
_UINT16_MARGIN = 500.0
#: A WCS coarser than this (deg/pixel) is a default identity, not a solution.
_MAX_PIXEL_SCALE_DEG = 0.5

# WCS keywords some writers store as quoted strings, which astropy ignores.
_NUMERIC_WCS_KEY = re.compile(
    r"^(?:(?:CRVAL|CRPIX|CDELT|CROTA)\d+|(?:CD|PC|PV)\d+_\d+|(?:A|B|AP|BP)_(?:\d+_\d+|ORDER|DMAX)"
    r"|EQUINOX|EPOCH|LONPOLE|LATPOLE)[A-Z]?$"
)
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


@dataclass(frozen=True)
class InstrumentValues:
    """Per-exposure instrument values from the header; None where it gives none.

    Attributes
    ----------
    gain : float or None
        e-/ADU.
    read_noise : float or None
        Read noise in electrons.
    saturation : float or None
        ADU level at and above which pixels are saturated or non-linear.
    zero_point : float or None
        Magnitude of a source whose total flux is 1 ADU in this exposure.
    filter : str or None
        Filter name as written in the header.
    observatory_code : str or None
        Three-character MPC observatory code, upper case.
    """

    gain: float | None
    read_noise: float | None
    saturation: float | None
    zero_point: float | None
    filter: str | None
    observatory_code: str | None


# --------------------------------------------------------------------------- values


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


def pixel_scaling(header: fits.Header) -> tuple[float, float]:
    """``(BSCALE, BZERO)`` of an image HDU, turning stored values into physical ones.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The image header.

    Returns
    -------
    bscale, bzero : float
        ``value = stored * bscale + bzero``; 1 and 0 when a keyword is absent,
        unreadable or zero (a BSCALE of 0 would erase the image).
    """
    return _number(header.get("BSCALE")) or 1.0, _number(header.get("BZERO")) or 0.0


def exposure_time(headers: Sequence[fits.Header]) -> float:
    """Exposure time in seconds, from the first positive EXPTIME-like keyword.

    Parameters
    ----------
    headers : sequence of astropy.io.fits.Header
        The image header, then the primary one.

    Returns
    -------
    float
        Seconds; 0.0 when no header gives a positive exposure time.
    """
    return _positive(headers, _EXPTIME_KEYS) or 0.0


def instrument_values(headers: Sequence[fits.Header], *, exptime: float) -> InstrumentValues:
    """Gain, read noise, saturation, zero point, filter and MPC code, as one set.

    Each is looked up under the names writers use for it, image header first.
    Unsigned 16-bit data without a saturation keyword saturates a little below
    65535. A zero point whose comment says it is per second is moved to the
    whole exposure.

    Parameters
    ----------
    headers : sequence of astropy.io.fits.Header
        The image header, then the primary one.
    exptime : float, keyword-only
        Exposure time in seconds (see `exposure_time`); 0 leaves a per-second
        zero point as it is.

    Returns
    -------
    InstrumentValues
        None for every value the headers do not give (or give unusably).
    """
    code = _text(headers, _OBSCODE_KEYS)
    return InstrumentValues(
        gain=_positive(headers, _GAIN_KEYS),
        read_noise=_positive(headers, _RDNOISE_KEYS),
        saturation=_saturation(headers),
        zero_point=_zero_point(headers, exptime),
        filter=_text(headers, _FILTER_KEYS) or None,
        observatory_code=(
            code.upper() if code and re.fullmatch(r"[A-Za-z0-9]\d\d", code) else None
        ),
    )


def _saturation(headers: Sequence[fits.Header]) -> float | None:
    level = _positive(headers, _SATURATION_KEYS)
    if level is not None:
        return level
    header = headers[0]
    bscale, bzero = pixel_scaling(header)
    if header.get("BITPIX") == 16 and bzero == 32768 and bscale == 1.0:
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


def mid_exposure_mjd(headers: Sequence[fits.Header], *, name: str, exptime: float) -> float:
    """UTC MJD at mid-exposure, from whichever time keywords the header uses.

    Read from the raw header, never from astropy's WCS, whose "datfix" turns
    a date-only DATE-OBS into midnight. Mid-exposure keywords (DATE-AVG,
    MJD-AVG, MIDTIMJD) are used as they are; start times (DATE-OBS with a
    time, a date-only DATE-OBS plus TIME-OBS/UT/..., MJD-OBS, JD-OBS, JD)
    get half the exposure added. TIMESYS picks the time scale (UTC when
    absent).

    Parameters
    ----------
    headers : sequence of astropy.io.fits.Header
        The image header, then the primary one.
    name : str, keyword-only
        File name, for error messages.
    exptime : float, keyword-only
        Exposure time in seconds (see `exposure_time`).

    Returns
    -------
    float
        UTC MJD at mid-exposure.

    Raises
    ------
    InputError
        An unknown TIMESYS, an unreadable time value, a date without a time,
        or no time keyword at all. The message names the file and the
        keywords tried.
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


def celestial_wcs(header: fits.Header, *, fobj: fits.HDUList | None = None) -> WCS | None:
    """The 2-D celestial WCS of an image header, after repairing writer quirks.

    Numeric WCS keywords stored as quoted text (which astropy would skip,
    silently building an identity WCS) become numbers, and SCAMP's ``TAN``
    with ``PVi_j`` distortion is read as ``TPV``. The header is not changed.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The image header.
    fobj : astropy.io.fits.HDUList, keyword-only, optional
        The already open file the header belongs to, for distortion tables
        kept in other extensions.

    Returns
    -------
    astropy.wcs.WCS or None
        Two celestial axes; None when the header has no celestial WCS or one
        astropy cannot build. Check it with `check_wcs` before use.
    """
    with warnings.catch_warnings():
        # FITSFixedWarning (datfix, RADECSYS) and friends: harmless, and we read times ourselves.
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            wcs = WCS(_repaired_wcs_header(header), fobj=fobj).celestial
        except Exception:  # astropy raises many types for malformed WCS keywords
            return None
    return wcs if wcs.has_celestial and wcs.naxis == 2 else None


def check_wcs(wcs: WCS, shape: tuple[int, int], *, name: str) -> None:
    """Check that ``wcs`` is a real sky solution for an image of ``shape``.

    A header without CD/CDELT keywords (or with values astropy could not
    read) still gives a WCS, a default identity of 1 deg/pixel; this catches
    it, and any WCS that cannot place the image centre on the sky.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS, e.g. from `celestial_wcs`.
    shape : (int, int)
        Image shape (H, W).
    name : str, keyword-only
        File name, for the error message.

    Raises
    ------
    InputError
        The WCS cannot be evaluated, its pixel scale is zero, undefined or
        at least 0.5 deg/pixel, or it gives no sky position at the centre.
    """
    problem = _wcs_problem(wcs, shape)
    if problem is not None:
        raise InputError(f"{name}: {problem}. Plate-solve the frame and save the solution.")


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


# --------------------------------------------------------------------------- layout and pointing

_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")
_SECTION_KEYS = ("TRIMSEC", "DATASEC")
#: Plate scale keywords, arcsec per pixel (binned). PIXSCAL is left out: some
#: writers (Lowell's) put the unbinned scale there.
_SCALE_KEYS = ("SECPIX", "SECPIX1", "SECPIXX", "PIXSCALE", "PIXSCAL1", "SCALE")
_RA_KEYS = ("OBJCTRA", "RA", "TELRA", "RA_OBJ")
_DEC_KEYS = ("OBJCTDEC", "DEC", "TELDEC", "DEC_OBJ")


def data_section(
    header: fits.Header, shape: tuple[int, int], *, name: str
) -> tuple[slice, slice] | None:
    """The part of a raw image that holds sky, from ``TRIMSEC`` (else ``DATASEC``).

    Raw CCD frames carry prescan and overscan columns (``BIASSEC``) that are
    not sky: left in, they are a sharp edge that no WCS or template fits.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The image header.
    shape : (int, int)
        Image shape (H, W).
    name : str, keyword-only
        File name, for the error message.

    Returns
    -------
    (slice, slice) or None
        ``(rows, columns)`` to keep, 0-based; None when the header names no
        section or the section is the whole image.

    Raises
    ------
    InputError
        A section that is not ``[x1:x2,y1:y2]`` (1-based, inclusive) inside the image.
    """
    found = _lookup([header], _SECTION_KEYS)
    if found is None:
        return None
    key, value, _ = found
    match = _SECTION.match(str(value))
    h, w = shape
    if match:
        x1, x2, y1, y2 = (int(v) for v in match.groups())
        if 1 <= x1 <= x2 <= w and 1 <= y1 <= y2 <= h:
            if (x2 - x1 + 1, y2 - y1 + 1) == (w, h):
                return None
            return slice(y1 - 1, y2), slice(x1 - 1, x2)
    raise InputError(
        f"{name}: {key} = {value!r} is not a section [x1:x2,y1:y2] of the {w}x{h} image; "
        f"correct it or delete the {key} keyword."
    )


def detector_origin(header: fits.Header) -> tuple[int, int]:
    """Detector pixel ``(y, x)`` of the image's first pixel, from IRAF's ``LTV1/LTV2``.

    Cutouts and trimmed frames keep their place on the detector in ``LTVi``
    (image pixel = detector pixel + LTV), so defects fixed on the detector can
    be found across frames cut differently; (0, 0) when absent.
    """
    ltv = [_number(header.get(key)) or 0.0 for key in ("LTV2", "LTV1")]
    return -round(ltv[0]), -round(ltv[1])


def pixel_scale_hint(headers: Sequence[fits.Header]) -> float | None:
    """Nominal plate scale in arcsec per pixel, for frames without a WCS.

    Read from ``SECPIX``-like keywords, else from the pixel size and focal
    length (``XPIXSZ`` in microns, ``FOCALLEN`` in mm, as MaxIm DL and
    N.I.N.A. write them). Nominal values can be off by ten percent: a sky
    position from them is approximate.

    Returns
    -------
    float or None
        Arcsec per pixel; None when the headers say nothing usable.
    """
    scale = _positive(headers, _SCALE_KEYS)
    if scale is not None:
        return scale
    pixel_um, focal_mm = _positive(headers, ("XPIXSZ",)), _positive(headers, ("FOCALLEN",))
    if pixel_um is None or focal_mm is None:
        return None
    return 206.264806 * pixel_um / focal_mm


def _angle(value: Any, *, hours: bool) -> float | None:
    """Degrees from a number (degrees) or sexagesimal text (hours for RA, degrees for Dec)."""
    number = _number(value)
    if number is not None:
        return number
    parts = re.split(r"[:\s]+", str(value).strip())
    if len(parts) != 3:
        return None
    sign = -1.0 if parts[0].startswith("-") else 1.0
    try:
        a, b, c = abs(float(parts[0])), float(parts[1]), float(parts[2])
    except ValueError:
        return None
    degrees = sign * (a + b / 60.0 + c / 3600.0)
    return degrees * 15.0 if hours else degrees


def pointing_hint(headers: Sequence[fits.Header]) -> tuple[float, float] | None:
    """Where the telescope pointed, RA and Dec in degrees, for frames without a WCS.

    ``OBJCTRA``/``OBJCTDEC`` (sexagesimal), else ``RA``/``DEC`` or
    ``TELRA``/``TELDEC`` (sexagesimal text: hours and degrees; numbers:
    degrees). A mount's idea of where it points is good to arcminutes at best.

    Returns
    -------
    (float, float) or None
        ``(ra, dec)`` in degrees, None when no pair is readable.
    """
    for ra_key, dec_key in zip(_RA_KEYS, _DEC_KEYS, strict=True):
        ra_found, dec_found = _lookup(headers, (ra_key,)), _lookup(headers, (dec_key,))
        if ra_found is None or dec_found is None:
            continue
        ra = _angle(ra_found[1], hours=isinstance(ra_found[1], str))
        dec = _angle(dec_found[1], hours=False)
        if ra is not None and dec is not None and -90.0 <= dec <= 90.0:
            return ra % 360.0, dec
    return None
