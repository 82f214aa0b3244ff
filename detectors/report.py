"""Results out of the engine: the tracks contract (JSON) and the MPC report.

Formatting only; `detectors.io.write_json` and `detectors.io.write_text`
write the files. Both outputs name a track by the same designation, so a
line of the MPC report can be found in the JSON and back.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .contract import SCHEMA_VERSION
from .types import Frame, Track

__all__ = [
    "MPC_NET_NAMES",
    "band_of",
    "mpc_designation",
    "mpc_header",
    "mpc_report",
    "mpc_report_known",
    "track_designations",
    "tracks_to_contract",
]

_MJD_EPOCH = dt.date(1858, 11, 17)
_TEMP_DESIGNATION = re.compile(r"[A-Za-z0-9]{1,7}")
_MPC_CODE = re.compile(r"[A-Z0-9]\d\d")
# Single-character bands the MPC accepts in column 71.
_MPC_BANDS = frozenset("UBVRIJHKGC") | frozenset("ugrizywoc")
_SLOAN_PREFIX = re.compile(r"^(?:sdss|sloan|ps1|panstarrs|ztf|lsst|decam)", re.I)
_OTHER_PREFIX = re.compile(r"^(?:bessell?|johnson|cousins|gaia|atlas)", re.I)
_CLEAR = frozenset({"clear", "clr", "open", "none", "unfiltered", "cl", "lum", "luminance"})


def track_designations(tracks: Sequence[Track]) -> list[str]:
    """One designation per track, valid as an MPC temporary designation.

    A track keeps its own ``id`` when that is 1–7 letters or digits and
    unique; otherwise it is named ``AH`` plus its 1-based index (``AH00001``).

    Parameters
    ----------
    tracks : sequence of Track

    Returns
    -------
    list of str
        Same order as ``tracks``.
    """
    names: list[str] = []
    for i, track in enumerate(tracks):
        name = track.id
        if not _TEMP_DESIGNATION.fullmatch(name or "") or name in names:
            name = f"AH{i + 1:05d}"
        names.append(name)
    return names


def _number(value: Any) -> float | None:
    """A finite Python float, or None for NaN/inf/None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_safe(obj: Any) -> Any:
    """Plain JSON types: NumPy scalars/arrays unwrapped, non-finite numbers dropped.

    A non-finite value becomes null in a list and is left out of a mapping
    (the schema types most fields as numbers, which null would break).
    """
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            value = _json_safe(value)
            if value is not None or obj[key] is None:
                out[str(key)] = value
        return out
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, list | tuple):
        return [_json_safe(value) for value in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return _number(obj)
    return obj


def _frame_of(track: Track, k: int, frames: Sequence[Frame]) -> Frame:
    index = int(track.frames[k])
    if not 0 <= index < len(frames):
        raise ValueError(
            f"track {track.id or '?'} refers to frame {index}, but {len(frames)} frames were "
            "given; pass the frames the tracks were found in."
        )
    return frames[index]


def _observation(track: Track, k: int, frames: Sequence[Frame]) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "mjd": float(track.mjd[k]),
        "ra": float(track.ra[k]) % 360.0,
        "dec": float(track.dec[k]),
    }
    for key in ("ra_err_arcsec", "dec_err_arcsec"):
        value = _number(getattr(track, key)[k])
        if value is not None:
            obs[key] = value
    obs["mag"] = _number(track.mag[k])
    obs["snr"] = _number(track.snr[k])
    obs["frame"] = _frame_of(track, k, frames).name
    return obs


def tracks_to_contract(
    tracks: Sequence[Track],
    *,
    frames: Sequence[Frame],
    run: Mapping[str, Any],
    reference: int = 0,
    annotations: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The results document of the tracks contract (`detectors.contract`), ready for `json.dumps`.

    Parameters
    ----------
    tracks : sequence of Track
        Found movers; ``Track.frames`` indexes ``frames``.
    frames : sequence of Frame, keyword-only
        The searched frames, in the order the tracks index them.
    run : mapping, keyword-only
        The ``run`` block (version, device, timings, ...), copied as plain
        JSON values.
    reference : int, keyword-only
        Index of the frame whose centre is reported as the field centre.
    annotations : mapping, keyword-only, optional
        Extra contract fields per track id (``known_object``, ``known``,
        ``digest2``, ``identification`` from identification).

    Returns
    -------
    dict
        ``field``, ``tracks`` and ``run``. Only Python floats, ints, strings
        and None: NaN becomes null where the schema allows it (``mag``,
        ``snr``) and leaves out the optional field elsewhere. ``mjd_start``
        and ``mjd_end`` are the first and last mid-exposure times (UTC MJD).

    Raises
    ------
    ValueError
        No frames, or a track that indexes a frame not given.
    """
    if not frames:
        raise ValueError("tracks_to_contract needs the searched frames; none were given.")
    ref = frames[reference]
    ra, dec = ref.wcs.all_pix2world([[(ref.shape[1] - 1) / 2, (ref.shape[0] - 1) / 2]], 0)[0]
    mjds = [frame.mjd for frame in frames]
    doc_tracks = []
    for name, track in zip(track_designations(tracks), tracks, strict=True):
        order = np.argsort(np.asarray(track.mjd), kind="stable")
        item: dict[str, Any] = {
            "id": name,
            "observations": [_observation(track, int(k), frames) for k in order],
        }
        for key in ("rate_arcsec_per_hour", "position_angle_deg", "stacked_snr"):
            value = _number(getattr(track, key))
            if value is not None:
                item[key] = value
        item["origin"] = track.origin
        item["known_object"] = None
        item.update(_json_safe(dict((annotations or {}).get(name, {}))))
        doc_tracks.append(item)
    return {
        "schema_version": SCHEMA_VERSION,
        "field": {
            "ra": float(ra) % 360.0,
            "dec": float(dec),
            "frames": len(frames),
            "mjd_start": float(min(mjds)),
            "mjd_end": float(max(mjds)),
        },
        "tracks": doc_tracks,
        "run": _json_safe(dict(run)),
    }


def _mpc_date(mjd: float) -> str:
    """``YYYY MM DD.dddddd`` (17 characters), rounded with the carry into the date."""
    micro = round(mjd * 1_000_000)
    day, frac = divmod(micro, 1_000_000)
    date = _MJD_EPOCH + dt.timedelta(days=day)
    return f"{date.year:04d} {date.month:02d} {date.day:02d}.{frac:06d}"


def _mpc_ra(ra_deg: float) -> str:
    """``HH MM SS.sss`` (12 characters); rounding 59.9995 s carries into minutes and hours."""
    ms = round((ra_deg % 360.0) / 15.0 * 3_600_000) % (24 * 3_600_000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d} {m:02d} {s:02d}.{ms:03d}"


def _mpc_dec(dec_deg: float) -> str:
    """``sDD MM SS.ss`` (12 characters), with the same carry as `_mpc_ra`."""
    cs = round(abs(dec_deg) * 360_000)
    sign = "-" if dec_deg < 0 and cs > 0 else "+"
    d, rest = divmod(cs, 360_000)
    m, rest = divmod(rest, 6000)
    s, cs = divmod(rest, 100)
    return f"{sign}{d:02d} {m:02d} {s:02d}.{cs:02d}"


def _mpc_band(filter_name: str | None) -> str:
    """The MPC band letter for a header filter name, or a blank when unsure."""
    text = re.sub(r"[^A-Za-z]", "", filter_name or "")
    if text in _MPC_BANDS:
        return text
    if text.lower() in _CLEAR:
        return "C"
    sloan = _SLOAN_PREFIX.match(text)
    text = _OTHER_PREFIX.sub("", _SLOAN_PREFIX.sub("", text))
    if sloan and text.lower() in {"u", "g", "r", "i", "z", "y", "w"}:
        return text.lower()
    if len(text) == 2 and text[1].lower() == "p" and text[0] in "ugriz":  # g', r' written as gp, rp
        return text[0]
    if len(text) == 2 and text[1].lower() in "cj" and text[0].upper() in "UBVRI":  # Rc, Ic, Vj
        return text[0].upper()
    return text if text in _MPC_BANDS else " "


def band_of(filter_name: str | None) -> str | None:
    """The MPC band letter of a header's filter name, or None when unknown or unmapped."""
    band = _mpc_band(filter_name)
    return None if band == " " else band


def _mpc_line(
    designation: str, mjd: float, ra: float, dec: float, mag: float, band: str, code: str
) -> str:
    """One 80-column line; every piece has a fixed width, so columns cannot slip."""
    if math.isfinite(mag) and -9.95 < mag < 99.95:
        photometry = f"{mag:4.1f} {band}"
    else:
        photometry = " " * 6
    number, discovery, note1, note2 = " " * 5, " ", " ", "C"
    return (
        f"{number}{designation:<7}{discovery}{note1}{note2}"
        f"{_mpc_date(mjd)}{_mpc_ra(ra)}{_mpc_dec(dec)}{' ' * 9}{photometry}{' ' * 6}{code}"
    )


def mpc_report(
    tracks: Sequence[Track],
    *,
    frames: Sequence[Frame],
    observatory_code: str = "500",
) -> str:
    """The observations in the MPC 1992 80-column format, one line each.

    Column layout: 1–5 blank (no number), 6–12 temporary designation (see
    `track_designations`), 13 blank (no discovery asterisk), 14 blank,
    15 ``C`` (CCD), 16–32 UTC mid-exposure date ``YYYY MM DD.dddddd``,
    33–44 RA ``HH MM SS.sss``, 45–56 Dec ``sDD MM SS.ss``, 57–65 blank,
    66–70 magnitude ``MM.M`` (blank when unknown), 71 band from the frame's
    filter (blank when unknown or unmapped), 72–77 blank, 78–80 code.

    Parameters
    ----------
    tracks : sequence of Track
    frames : sequence of Frame, keyword-only
        The searched frames, indexed by ``Track.frames``; each frame's
        ``observatory_code`` and ``filter`` are used when known.
    observatory_code : str, keyword-only
        MPC code for frames whose header names none (``500`` = geocentric).

    Returns
    -------
    str
        Observation lines only (no COD/OBS/... header), each exactly 80
        characters and ending in a newline; grouped by track, in time order.
        Empty when there are no tracks.

    Raises
    ------
    ValueError
        ``observatory_code`` is not three characters like ``500`` or
        ``G96``, or a track indexes a frame not given.
    """
    if not _MPC_CODE.fullmatch(observatory_code):
        raise ValueError(
            f"observatory_code must be an MPC code such as '500' or 'G96', "
            f"not {observatory_code!r}."
        )
    lines = []
    for name, track in zip(track_designations(tracks), tracks, strict=True):
        for k in np.argsort(np.asarray(track.mjd), kind="stable"):
            frame = _frame_of(track, int(k), frames)
            code = frame.observatory_code or ""
            lines.append(
                _mpc_line(
                    name,
                    float(track.mjd[k]),
                    float(track.ra[k]),
                    float(track.dec[k]),
                    float(track.mag[k]),
                    _mpc_band(frame.filter),
                    code if _MPC_CODE.fullmatch(code) else observatory_code,
                )
            )
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------- known objects, header

#: The MPC's ``NET`` names of the astrometric catalogues (ADES ``astCat`` codes as keys).
MPC_NET_NAMES = {
    "Gaia1": "Gaia-DR1",
    "Gaia2": "Gaia-DR2",
    "Gaia3": "Gaia-DR3",
    "Gaia3E": "Gaia-EDR3",
    "UCAC4": "UCAC-4",
    "UCAC5": "UCAC-5",
    "PS1_DR2": "PS1-DR2",
    "ATLAS2": "ATLAS-2",
    "2MASS": "2MASS",
    "USNOB1": "USNO-B1.0",
}


def _header_lines(keyword: str, items: Sequence[str]) -> list[str]:
    """``KEY a, b, c`` lines of at most 80 characters, continued on more ``KEY`` lines."""
    lines: list[str] = []
    current = ""
    for item in (" ".join(str(i).split()) for i in items):
        if not item:
            continue
        candidate = f"{current}, {item}" if current else item
        if current and len(candidate) > 76:
            lines.append(f"{keyword} {current}")
            candidate = item
        current = candidate
    if current:
        lines.append(f"{keyword} {current[:76]}")
    return lines


def mpc_header(
    *,
    observatory_code: str,
    observers: Sequence[str],
    measurers: Sequence[str],
    telescope: str,
    net: str | None = None,
    ack: str | None = None,
    contact: str | None = None,
    email: str | None = None,
) -> str:
    """The header lines of an 80-column submission (COD, CON, OBS, MEA, TEL, NET, ACK, AC2).

    Parameters
    ----------
    observatory_code : str, keyword-only
        The site's MPC code; ``500`` (geocentric) is refused, as the MPC
        would: a report needs the real site.
    observers, measurers : sequence of str, keyword-only
        Names (``B. Skiff``); at least one measurer.
    telescope : str, keyword-only
        E.g. ``1.1-m f/8 reflector + CCD``.
    net : str, keyword-only, optional
        Reference catalogue: an ADES ``astCat`` code is turned into the MPC's
        name (``Gaia2`` -> ``Gaia-DR2``), anything else is written as given.
    ack, contact, email : str, keyword-only, optional

    Returns
    -------
    str
        Lines of at most 80 characters, each ending in a newline.

    Raises
    ------
    ValueError
        A missing or geocentric code, no measurer, or no telescope; the
        message says which setting gives it.
    """
    if not _MPC_CODE.fullmatch(observatory_code or "") or observatory_code == "500":
        raise ValueError(
            f"observatory code {observatory_code!r}: an MPC report needs the site's code "
            "(e.g. 688); give --observatory, set it in the settings, or put the site in the "
            "FITS header."
        )
    if not any(str(m).strip() for m in measurers):
        raise ValueError("an MPC report needs at least one measurer (MEA): set the measurers.")
    if not telescope.strip():
        raise ValueError("an MPC report needs the telescope (TEL): set the telescope description.")
    lines = [f"COD {observatory_code}"]
    if contact:
        lines += _header_lines("CON", [contact])
    if email:
        lines += _header_lines("CON", [f"[{email}]"])
    lines += _header_lines("OBS", observers)
    lines += _header_lines("MEA", measurers)
    lines += _header_lines("TEL", [telescope])
    if net:
        lines += _header_lines("NET", [MPC_NET_NAMES.get(net, net)])
    if ack:
        lines += _header_lines("ACK", [ack])
    return "".join(line[:80] + "\n" for line in lines)


def mpc_designation(
    *, number: int | None = None, packed: str | None = None, temporary: str = ""
) -> str:
    """Columns 1-12 of an 80-column line: packed number, or packed provisional, or temporary.

    A numbered object is written in columns 1-5 (``05945``, ``A0345``,
    ``~0000``), an unnumbered known one by its packed provisional
    designation in 6-12 (``K19A00A``), a new one by its temporary
    designation in 6-12.
    """
    from .orbits import pack_designation  # local: report stays importable without orbits' cost

    if number is not None and number >= 0:
        return f"{pack_designation(str(number)):<5}{'':7}"
    if packed and len(packed.strip()) == 7:
        return f"{'':5}{packed.strip()}"
    if not _TEMP_DESIGNATION.fullmatch(temporary):
        raise ValueError(f"temporary designation {temporary!r}: give 1-7 letters or digits")
    return f"{'':5}{temporary:<7}"


def mpc_report_known(report: str, designations: Mapping[str, str]) -> str:
    """An `mpc_report` with known objects' designations in columns 1-12.

    Parameters
    ----------
    report : str
        Observation lines from `mpc_report` (temporary designation in 6-12).
    designations : mapping of str to str
        Temporary designation -> the 12 columns from `mpc_designation`.

    Returns
    -------
    str
        The same lines, relabelled where the temporary designation is a key.
    """
    out = []
    for line in report.splitlines():
        key = line[5:12].strip()
        if len(line) == 80 and key in designations:
            line = designations[key] + line[12:]
        out.append(line + "\n")
    return "".join(out)
