"""ADES PSV: the MPC's current format for submitting astrometry.

The pipe-separated form of the IAU's Astrometry Data Exchange Standard
(version 2022): header blocks (``# observatory``, ``# submitter``,
``# observers``, ``# measurers``, ``# telescope``, ``# software``, ``#
comment``), then a line of field names and one line per observation. A known
object is named by ``permID`` (numbered) or ``provID``; a new one by the
observer's ``trkSub``. Times are UTC with milliseconds; positions are ICRS
decimal degrees; ``rmsRA`` is the error of RA*cos(Dec) in arcsec.

The IAU's own validator (``iau-ades``: ``psvtoxml`` then ``valsubmit``)
checks the output in the tests; this module does not import it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.time import Time

from . import __version__
from .predict import KnownObject

__all__ = ["AdesContext", "AdesTrack", "ades_ids", "ades_psv", "ast_cat_from_header"]

_CODE = re.compile(r"[0-9A-Z]\d\d")
_TRKSUB = re.compile(r"[-A-Za-z0-9_]{1,8}")
_CAT = re.compile(r"[.A-Za-z0-9_]{1,8}")
_GAIA_EDR3 = 59186.0  # 2020-12-03: Gaia EDR3 released; an unnamed "GAIA" before it is DR2
_GAIA_DR2 = 58233.0  # 2018-04-25
_CATALOGS = (
    (re.compile(r"gaia.*e\s*dr\s*3|gaia.*edr3", re.I), "Gaia3E"),
    (re.compile(r"gaia.*dr\s*3", re.I), "Gaia3"),
    (re.compile(r"gaia.*dr\s*2", re.I), "Gaia2"),
    (re.compile(r"gaia.*dr\s*1", re.I), "Gaia1"),
    (re.compile(r"ucac.?4", re.I), "UCAC4"),
    (re.compile(r"ucac.?5", re.I), "UCAC5"),
    (re.compile(r"ps1|pan.?starrs", re.I), "PS1_DR2"),
    (re.compile(r"atlas", re.I), "ATLAS2"),
    (re.compile(r"2mass", re.I), "2MASS"),
    (re.compile(r"usno.?b", re.I), "USNOB1"),
    (re.compile(r"sdss", re.I), "SDSS8"),
)


@dataclass(frozen=True, kw_only=True)
class AdesContext:
    """The header blocks of an ADES submission.

    ``observatory_code``, ``submitter``, ``measurers`` and the telescope's
    ``design``, ``aperture_m`` and ``detector`` are required by the MPC;
    the rest is written when given.
    """

    observatory_code: str
    submitter: str
    measurers: Sequence[str]
    telescope_design: str
    telescope_aperture_m: float
    telescope_detector: str
    observatory_name: str | None = None
    submitter_institution: str | None = None
    observers: Sequence[str] = ()
    telescope_name: str | None = None
    telescope_f_ratio: float | None = None
    telescope_filter: str | None = None
    comment: Sequence[str] = ()
    software: str = f"AstroHunter {__version__}"


@dataclass(frozen=True, kw_only=True)
class AdesTrack:
    """One object's observations and how the report names it.

    Exactly one of ``perm_id``, ``prov_id`` and ``trk_sub`` is given (see
    `ades_ids`). Arrays have one entry per observation: UTC MJD, ICRS
    degrees, arcsec; ``mag``/``rms_mag`` may be NaN (left out), and need
    ``band``.
    """

    mjd: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    rms_ra_arcsec: np.ndarray
    rms_dec_arcsec: np.ndarray
    perm_id: str | None = None
    prov_id: str | None = None
    trk_sub: str | None = None
    mag: np.ndarray | None = None
    rms_mag: np.ndarray | None = None
    band: str | None = None
    notes: Sequence[str] = field(default_factory=tuple)


def ades_ids(known: KnownObject | None, trk_sub: str) -> dict[str, str]:
    """``permID``, ``provID`` or ``trkSub`` for a track: as `AdesTrack` keywords.

    A numbered object gets ``perm_id``; an unnumbered known one ``prov_id``
    (its designation, e.g. ``2019 AA``); a new one ``trk_sub``, which must be
    1-8 of ``A-Z a-z 0-9 - _`` and unique within the submission.
    """
    if known is not None and known.number is not None:
        return {"perm_id": str(known.number)}
    if known is not None:
        return {"prov_id": known.designation}
    if not _TRKSUB.fullmatch(trk_sub):
        raise ValueError(
            f"trkSub {trk_sub!r}: ADES allows 1-8 letters, digits, '-' or '_'; rename the track."
        )
    return {"trk_sub": trk_sub}


def ast_cat_from_header(header: Any, mjd: float) -> str | None:
    """The ADES ``astCat`` code of the catalogue a header says its WCS was fitted to.

    Reads ``REGCAT``, ``ASTRCAT``, ``ASTREFCAT``, ``REFCAT`` or ``WCSCAT``.
    A bare ``GAIA`` (SCAMP's name, no release) is taken as the release
    current at the observation: DR2 from 2018-04-25, EDR3 (``Gaia3E``) from
    2020-12-03, DR1 before; a guess the report's user can override.

    Returns
    -------
    str or None
        None when no keyword names a catalogue the MPC lists.
    """
    for key in ("REGCAT", "ASTRCAT", "ASTREFCAT", "REFCAT", "WCSCAT"):
        value = str(header.get(key, "") or "").strip()
        if not value:
            continue
        for pattern, code in _CATALOGS:
            if pattern.search(value):
                return code
        if value.lower().startswith("gaia"):
            return "Gaia3E" if mjd >= _GAIA_EDR3 else "Gaia2" if mjd >= _GAIA_DR2 else "Gaia1"
    return None


def _obs_time(mjd: np.ndarray) -> list[str]:
    t = Time(np.asarray(mjd, dtype=float), format="mjd", scale="utc")
    t.precision = 3
    return [f"{text}Z" for text in np.atleast_1d(t.isot)]


def _clean(text: str, what: str) -> str:
    text = " ".join(str(text).split())
    if not text or "|" in text:
        raise ValueError(f"ADES {what} {text!r}: give non-empty text without '|'.")
    return text


def _header(context: AdesContext) -> list[str]:
    code = context.observatory_code
    if not _CODE.fullmatch(code or "") or code == "500":
        raise ValueError(
            f"ADES observatory code {code!r}: give the site's MPC code (e.g. 688), from "
            "--observatory, the settings, or a FITS header whose site matches the code list."
        )
    if not context.measurers:
        raise ValueError("ADES needs at least one measurer's name (the settings' measurers).")
    if not (context.telescope_aperture_m > 0 and math.isfinite(context.telescope_aperture_m)):
        raise ValueError(
            f"ADES telescope aperture {context.telescope_aperture_m!r}: give it in metres."
        )
    lines = ["# version=2022", "# observatory", f"! mpcCode {code}"]
    if context.observatory_name:
        lines.append(f"! name {_clean(context.observatory_name, 'observatory name')}")
    lines += ["# submitter", f"! name {_clean(context.submitter, 'submitter')}"]
    if context.submitter_institution:
        lines.append(f"! institution {_clean(context.submitter_institution, 'institution')}")
    if context.observers:
        lines.append("# observers")
        lines += [f"! name {_clean(name, 'observer')}" for name in context.observers]
    lines.append("# measurers")
    lines += [f"! name {_clean(name, 'measurer')}" for name in context.measurers]
    lines.append("# telescope")
    if context.telescope_name:
        lines.append(f"! name {_clean(context.telescope_name, 'telescope name')}")
    lines += [
        f"! design {_clean(context.telescope_design, 'telescope design')}",
        f"! aperture {context.telescope_aperture_m:g}",
        f"! detector {_clean(context.telescope_detector, 'telescope detector')}",
    ]
    if context.telescope_f_ratio:
        lines.append(f"! fRatio {context.telescope_f_ratio:g}")
    if context.telescope_filter:
        lines.append(f"! filter {_clean(context.telescope_filter, 'telescope filter')}")
    lines += ["# software", f"! objectDetection {_clean(context.software, 'software')}"]
    if context.comment:
        lines.append("# comment")
        lines += [f"! line {_clean(line, 'comment')[:100]}" for line in context.comment]
    return lines


def _finite(values: np.ndarray | None, k: int) -> float | None:
    if values is None:
        return None
    value = float(values[k])
    return value if math.isfinite(value) else None


def ades_psv(
    context: AdesContext,
    tracks: Sequence[AdesTrack],
    *,
    ast_cat: str,
    phot_cat: str | None = None,
    mode: str = "CCD",
) -> str:
    """An ADES PSV submission: header blocks, then every observation of every track.

    Parameters
    ----------
    context : AdesContext
    tracks : sequence of AdesTrack
    ast_cat : str, keyword-only
        Astrometric reference catalogue (``Gaia2``, ``Gaia3E``, ...; see
        `ast_cat_from_header`).
    phot_cat : str or None, keyword-only
        Photometric catalogue; magnitudes are written only with a band.
    mode : str, keyword-only
        ``CCD`` (or ``CMO`` for CMOS).

    Returns
    -------
    str
        The file's text, observations in time order within each track.

    Raises
    ------
    ValueError
        A missing header field (observatory code, measurer, telescope), a bad
        catalogue code, or a track named in no way or in two.
    """
    if not _CAT.fullmatch(ast_cat or ""):
        raise ValueError(
            f"ADES astCat {ast_cat!r}: give the astrometric catalogue's MPC code, e.g. Gaia2."
        )
    if phot_cat is not None and not _CAT.fullmatch(phot_cat):
        raise ValueError(f"ADES photCat {phot_cat!r}: give an MPC catalogue code, e.g. Gaia2.")
    lines = _header(context)
    with_phot = any(
        t.band and t.mag is not None and np.isfinite(np.asarray(t.mag, float)).any() for t in tracks
    )
    names = ["permID", "provID", "trkSub", "mode", "stn", "obsTime", "ra", "dec", "rmsRA"]
    names += ["rmsDec", "astCat"]
    if with_phot:
        names += ["mag", "rmsMag", "band", "photCat"]
    if any(t.notes for t in tracks):
        names.append("notes")
    rows = []
    for track in tracks:
        ids = [track.perm_id, track.prov_id, track.trk_sub]
        if sum(bool(i) for i in ids) != 1:
            raise ValueError("each ADES track needs exactly one of permID, provID or trkSub")
        order = np.argsort(np.asarray(track.mjd, float), kind="stable")
        times = _obs_time(np.asarray(track.mjd, float)[order])
        for k, time in zip(order, times, strict=True):
            mag = _finite(track.mag, k) if track.band else None
            row: dict[str, str] = {
                "permID": track.perm_id or "",
                "provID": track.prov_id or "",
                "trkSub": track.trk_sub or "",
                "mode": mode,
                "stn": context.observatory_code,
                "obsTime": time,
                "ra": f"{float(track.ra[k]) % 360.0:.7f}",
                "dec": f"{float(track.dec[k]):+.7f}",
                "rmsRA": _rms(track.rms_ra_arcsec, k),
                "rmsDec": _rms(track.rms_dec_arcsec, k),
                "astCat": ast_cat,
                "mag": f"{mag:.2f}" if mag is not None else "",
                "rmsMag": _rms(track.rms_mag, k) if mag is not None else "",
                "band": (track.band or "") if mag is not None else "",
                "photCat": (phot_cat or "") if mag is not None else "",
                "notes": "".join(track.notes),
            }
            rows.append([row[name] for name in names])
    widths = [max([len(name)] + [len(r[i]) for r in rows]) for i, name in enumerate(names)]
    lines.append("|".join(name.ljust(w) for name, w in zip(names, widths, strict=True)))
    lines += ["|".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines) + "\n"


def _rms(values: np.ndarray | None, k: int) -> str:
    value = _finite(values, k)
    if value is None or value <= 0:
        return ""
    return f"{max(value, 0.001):.3f}"
