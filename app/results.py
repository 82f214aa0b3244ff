"""What a finished search adds to its tracks before anyone reads them.

Shared by ``astrohunter detect`` and the detailed-detect stage: which tracks
are known objects (`app.known`), the NEO score of the others (digest2), and
the reports an astronomer submits - the MPC 80-column report with its
header lines and known designations, and ADES PSV. Who and what the reports
name (observatory code, observers, measurers, telescope) comes from the
command line, else the settings, else the FITS header (``OBSERVER``,
``TELESCOP``, ``REGCAT``); a report that would need a guess is refused with
a message naming the option or setting that gives it - never a silent 500.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors import report
from detectors.ades import AdesContext, AdesTrack, ades_ids, ades_psv, ast_cat_from_header
from detectors.errors import InputError
from detectors.identify import ObservedTrack
from detectors.neo import digest2_scores
from detectors.predict import Footprint, KnownObject
from detectors.types import Frame, Track

from .catalog import obscodes_path
from .config import Settings
from .known import Mode, identify_known

__all__ = ["Identified", "ReportError", "ReportInfo", "ades_text", "identify", "mpc_text"]

#: The note of simulated reports: never to be mistaken for observations.
SIMULATED_COM = "COM SIMULATED DATA from AstroHunter's simulator: not observations, do not submit"


class ReportError(InputError):
    """A report cannot be written without a guess; the message names what to give."""


@dataclass(frozen=True, kw_only=True)
class ReportInfo:
    """Who and what a submission names."""

    observatory_code: str | None
    submitter: str | None = None
    observers: tuple[str, ...] = ()
    measurers: tuple[str, ...] = ()
    telescope: str | None = None
    telescope_design: str | None = None
    telescope_aperture_m: float | None = None
    telescope_detector: str = "CCD"
    ast_cat: str | None = None
    simulated: bool = False

    @classmethod
    def build(
        cls,
        settings: Settings,
        reference: Frame,
        *,
        observatory_code: str | None,
        simulated: bool = False,
        **given: Any,
    ) -> ReportInfo:
        """From ``given`` (CLI options; None = not given), else settings, else the header."""
        header = reference.header

        def pick(name: str, from_settings: Any, from_header: Any = None) -> Any:
            for value in (given.get(name), from_settings, from_header):
                if value not in (None, "", (), []):
                    return value
            return None

        observer = str(header.get("OBSERVER", "") or "").strip()
        telescope = str(header.get("TELESCOP", "") or "").strip()
        return cls(
            observatory_code=observatory_code,
            submitter=pick("submitter", settings.submitter),
            observers=tuple(
                pick("observers", settings.observers, [observer] if observer else ()) or ()
            ),
            measurers=tuple(pick("measurers", settings.measurers) or ()),
            telescope=pick("telescope", settings.telescope, telescope or None),
            telescope_design=pick("telescope_design", settings.telescope_design),
            telescope_aperture_m=pick("telescope_aperture_m", settings.telescope_aperture_m),
            telescope_detector=pick("telescope_detector", settings.telescope_detector) or "CCD",
            ast_cat=pick("ast_cat", None, ast_cat_from_header(header, reference.mjd)),
            simulated=simulated,
        )

    def missing_for_mpc(self) -> list[str]:
        """What an 80-column submission still needs, as the options that give it."""
        if self.simulated:
            return []
        need = []
        if not self.observatory_code or self.observatory_code == "500":
            need.append("the observatory's MPC code (--observatory, ASTROHUNTER_OBSERVATORY)")
        if not self.measurers:
            need.append("a measurer (--measurer, ASTROHUNTER_MEASURERS)")
        if not self.telescope:
            need.append("the telescope (--telescope, ASTROHUNTER_TELESCOPE, or TELESCOP)")
        return need

    def missing_for_ades(self) -> list[str]:
        """What an ADES submission still needs."""
        if self.simulated:
            return ["real observations: simulated data is never submitted"]
        need = [m for m in self.missing_for_mpc() if not m.startswith("the telescope")]
        if not self.submitter:
            need.append("the submitter (--submitter, ASTROHUNTER_SUBMITTER)")
        if not self.telescope_design:
            need.append("the telescope design (--telescope-design, ASTROHUNTER_TELESCOPE_DESIGN)")
        if not self.telescope_aperture_m:
            need.append("the aperture (--telescope-aperture, ASTROHUNTER_TELESCOPE_APERTURE)")
        if not self.ast_cat:
            need.append("the astrometric catalogue (--ast-cat, or REGCAT in the header)")
        return need


@dataclass
class Identified:
    """Identifications and NEO scores of a search's tracks, ready for the contract.

    ``per_track`` maps a track id to its contract fields (``known_object``,
    ``known``, ``digest2``, ``identification``); ``run`` holds
    ``known_in_field`` and ``known``; ``known`` maps a track id to its
    catalogued object (for report designations).
    """

    per_track: dict[str, dict[str, Any]]
    run: dict[str, Any]
    known: dict[str, KnownObject | None]
    observatory_code: str | None
    seconds: float
    notes: list[str] = field(default_factory=list)


def _observed(track: Track, frames: Sequence[Frame]) -> ObservedTrack:
    """A track as identification and digest2 take it (magnitudes only with a band)."""
    band = report.band_of(frames[int(track.frames[0])].filter) if track.frames.size else None
    mags = np.asarray(track.mag, dtype=float)
    err = np.hypot(np.asarray(track.ra_err_arcsec), np.asarray(track.dec_err_arcsec))
    return ObservedTrack(
        id=track.id,
        mjd=np.asarray(track.mjd, dtype=float),
        ra=np.asarray(track.ra, dtype=float),
        dec=np.asarray(track.dec, dtype=float),
        err_arcsec=float(np.median(err)) if err.size else 0.0,
        mag=mags if band and np.isfinite(mags).any() else None,
        band=band,
    )


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def identify(
    tracks: Sequence[Track],
    frames: Sequence[Frame],
    *,
    reference: Frame,
    settings: Settings,
    mode: Mode | None = None,
    orbits: Path | None = None,
    observatory_code: str | None = None,
) -> Identified:
    """Which tracks are known objects, what else was in the field, and the others' NEO scores.

    Raises
    ------
    InputError
        ``mode="mpcorb"`` without a catalogue, or an unreadable one.
    """
    observed = [_observed(t, frames) for t in tracks]
    outcome = identify_known(
        observed,
        footprint=Footprint(reference.wcs.celestial, reference.shape),
        frame_mjd=np.array([f.mjd for f in frames]),
        header=reference.header,
        settings=settings,
        mode=mode,
        orbits=orbits,
        observatory_code=observatory_code,
        header_code=reference.observatory_code,
    )
    result = outcome.result
    notes = list(outcome.notes)
    per_track: dict[str, dict[str, Any]] = {}
    known: dict[str, KnownObject | None] = {}
    for ident in result.tracks:
        k = ident.known
        known[ident.track_id] = k
        per_track[ident.track_id] = {
            "known_object": k.designation if k else None,
            "known": None
            if k is None
            else {
                "designation": k.designation,
                "packed": k.packed,
                "number": k.number,
                "name": k.name,
                "offset_arcsec": _finite(ident.offset_arcsec),
                "predicted_v": _finite(ident.predicted_v),
                "source": k.source,
            },
            "digest2": None,
            "identification": None if k else ident.reason,
        }
    new = [t for t in observed if known.get(t.id) is None]
    codes = obscodes_path(settings)
    if new and codes is None:
        notes.append(
            "no NEO scores: digest2 needs the MPC's observatory codes; run `astrohunter orbits "
            "update`"
        )
    elif new:
        assert codes is not None
        scores = digest2_scores(
            new, obscodes=codes, observatory_code=outcome.observatory_code or "500"
        )
        for track, score in zip(new, scores, strict=True):
            if score is not None:
                per_track[track.id]["digest2"] = {
                    "neo": score.neo,
                    "raw_neo": score.raw_neo,
                    "rms_arcsec": score.rms_arcsec,
                    "scores": score.scores,
                }
    run = {
        "known_in_field": [
            {
                "designation": o.known.designation,
                "mjd": o.mjd,
                "ra": o.ra,
                "dec": o.dec,
                "predicted_v": _finite(o.predicted_v),
                "rate_arcsec_per_hour": o.rate_arcsec_per_hour,
                "position_angle_deg": o.position_angle_deg,
                "track_id": o.track_id,
            }
            for o in result.known_in_field
        ],
        "known": {
            "source": result.source,
            "catalog_size": result.catalog_size,
            "candidates": result.candidates,
            "site": outcome.site.source,
            "observatory_code": outcome.observatory_code,
            "notes": notes,
        },
    }
    return Identified(
        per_track=per_track,
        run=run,
        known=known,
        observatory_code=outcome.observatory_code,
        seconds=outcome.seconds,
        notes=notes,
    )


def mpc_text(
    tracks: Sequence[Track], frames: Sequence[Frame], *, known: dict, info: ReportInfo
) -> str:
    """The MPC 80-column report: header lines, then observations with known designations.

    Simulated data gets a COM line saying so and the geocentric code 500
    instead of a header: it is never a submission.

    Raises
    ------
    ReportError
        The observatory code, a measurer or the telescope is missing.
    """
    missing = info.missing_for_mpc()
    if missing:
        raise ReportError("an MPC report needs " + "; ".join(missing))
    code = info.observatory_code or "500"
    lines = report.mpc_report(tracks, frames=frames, observatory_code=code)
    designations = {
        t.id: report.mpc_designation(number=k.number, packed=k.packed, temporary=t.id)
        for t in tracks
        if (k := known.get(t.id)) is not None
    }
    lines = report.mpc_report_known(lines, designations)
    if info.simulated:
        return SIMULATED_COM + "\n" + lines
    assert info.telescope is not None
    header = report.mpc_header(
        observatory_code=code,
        observers=info.observers or info.measurers,
        measurers=info.measurers,
        telescope=info.telescope,
        net=info.ast_cat,
    )
    return header + lines


def ades_text(
    tracks: Sequence[Track], frames: Sequence[Frame], *, known: dict, info: ReportInfo
) -> str:
    """The ADES PSV submission of the tracks.

    Raises
    ------
    ReportError
        A header field the MPC requires is missing, or the data are simulated.
    """
    missing = info.missing_for_ades()
    if missing:
        raise ReportError("an ADES report needs " + "; ".join(missing))
    assert info.observatory_code and info.submitter and info.telescope_design
    assert info.telescope_aperture_m and info.ast_cat
    context = AdesContext(
        observatory_code=info.observatory_code,
        submitter=info.submitter,
        measurers=info.measurers,
        observers=info.observers,
        telescope_name=info.telescope,
        telescope_design=info.telescope_design,
        telescope_aperture_m=info.telescope_aperture_m,
        telescope_detector=info.telescope_detector,
    )
    rows = []
    for t in tracks:
        band = report.band_of(frames[int(t.frames[0])].filter)
        ids = ades_ids(known.get(t.id), t.id)
        rows.append(
            AdesTrack(
                mjd=np.asarray(t.mjd, dtype=float),
                ra=np.asarray(t.ra, dtype=float),
                dec=np.asarray(t.dec, dtype=float),
                rms_ra_arcsec=np.asarray(t.ra_err_arcsec, dtype=float),
                rms_dec_arcsec=np.asarray(t.dec_err_arcsec, dtype=float),
                mag=np.asarray(t.mag, dtype=float) if band else None,
                band=band,
                perm_id=ids.get("perm_id"),
                prov_id=ids.get("prov_id"),
                trk_sub=ids.get("trk_sub"),
            )
        )
    return ades_psv(context, rows, ast_cat=info.ast_cat)
