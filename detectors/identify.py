"""Is it new? Tracks matched to known objects, and what was predicted in the field.

Given predictions of candidate known objects at the tracks' own times
(`detectors.predict`: from the whole orbit catalogue, or from a SkyBoT
answer), `match_tracks` labels each track: a track matches an object when
the predicted positions agree with the measured ones at every observation
time (RMS offset within the tolerance, no single offset beyond twice it)
and the motion agrees; the closest pair wins and each object labels at most
one track. `identify_tracks` adds the list of every object predicted inside
the field, with the track that matched it or None.

The tolerance of a pair is ``n_sigma`` (3) times the combined one-sigma
error of the prediction (`KnownPredictions.sigma_arcsec`) and of the
track's astrometry, capped at ``max_tolerance_arcsec`` (10").

Times are UTC MJD; positions ICRS degrees; offsets and tolerances arcsec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .predict import Footprint, KnownObject, KnownPredictions

__all__ = [
    "FieldObject",
    "Identification",
    "IdentifyResult",
    "ObservedTrack",
    "identify_tracks",
    "match_tracks",
]


@dataclass(frozen=True)
class ObservedTrack:
    """One found track, as identification needs it.

    Attributes
    ----------
    id : str
    mjd, ra, dec : ndarray, shape (K,)
        UTC MJD at mid-exposure; ICRS degrees.
    err_arcsec : float
        Typical astrometric error of one position (0 when unknown).
    mag : ndarray, shape (K,), or None
        Magnitudes (NaN where unknown), for the NEO score.
    band : str or None
        The magnitudes' band (MPC letter), when known.
    """

    id: str
    mjd: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    err_arcsec: float = 0.0
    mag: np.ndarray | None = None
    band: str | None = None


@dataclass(frozen=True)
class Identification:
    """What one track is.

    ``known`` is None for an unidentified track, and ``reason`` then says why
    (no object within tolerance, or the source could not be asked).
    ``offset_arcsec`` is the RMS offset from the prediction over the track's
    observations; ``predicted_v`` the mean predicted V.
    """

    track_id: str
    known: KnownObject | None = None
    offset_arcsec: float | None = None
    max_offset_arcsec: float | None = None
    rate_difference_arcsec_per_hour: float | None = None
    tolerance_arcsec: float | None = None
    predicted_v: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class FieldObject:
    """A catalogued object predicted inside the field during the sequence.

    Position, V and motion at mid-sequence; ``x``/``y`` are 0-based pixels
    of the footprint's WCS; ``track_id`` the matched track or None (missed:
    too faint, or in a gap, or the prediction is off).
    """

    known: KnownObject
    mjd: float
    ra: float
    dec: float
    x: float
    y: float
    predicted_v: float | None
    rate_arcsec_per_hour: float
    position_angle_deg: float
    track_id: str | None = None


@dataclass(frozen=True)
class IdentifyResult:
    """Per track identifications (in the tracks' order) and the objects predicted in the field."""

    tracks: list[Identification]
    known_in_field: list[FieldObject] = field(default_factory=list)
    catalog_size: int = 0
    candidates: int = 0
    source: str = "mpcorb"


def _track_motion(track: ObservedTrack) -> tuple[np.ndarray, float] | None:
    """Fitted sky velocity (dRA cos Dec, dDec) in arcsec/h, and the span in hours."""
    t = (np.asarray(track.mjd) - np.mean(track.mjd)) * 24.0
    span = float(np.ptp(t)) if t.size else 0.0
    if t.size < 2 or span <= 0:
        return None
    dec0 = np.radians(np.mean(track.dec))
    dra = ((np.asarray(track.ra) - track.ra[0] + 180.0) % 360.0 - 180.0) * np.cos(dec0) * 3600
    ddec = (np.asarray(track.dec) - track.dec[0]) * 3600.0
    slope = np.polyfit(t, np.column_stack([dra, ddec]), 1)[0]
    return slope, span


def match_tracks(
    tracks: Sequence[ObservedTrack],
    predictions: KnownPredictions,
    *,
    n_sigma: float = 3.0,
    max_tolerance_arcsec: float = 10.0,
    min_rate_tolerance: float = 1.0,
) -> list[Identification]:
    """Label tracks with the known objects whose predictions they follow.

    A pair (track, object) is possible when, over the track's observations,
    the RMS offset is within the object's tolerance, no offset exceeds twice
    it, and the fitted motion differs from the predicted one by at most
    ``max(min_rate_tolerance, 2 tolerance / span)`` arcsec/h. Pairs are then
    taken closest first (smallest RMS offset), each track and each object
    at most once.

    Parameters
    ----------
    tracks : sequence of ObservedTrack
    predictions : KnownPredictions
        Must include every track time.
    n_sigma : float, keyword-only
        Tolerance in units of the combined 1-sigma error of prediction and track.
    max_tolerance_arcsec : float, keyword-only
        Cap on any tolerance (the issue's default: 10").
    min_rate_tolerance : float, keyword-only
        Smallest allowed motion difference, arcsec/h.

    Returns
    -------
    list of Identification
        One per track, in order; ``reason`` says why a track stays unidentified.
    """
    n_obj = len(predictions.objects)
    pairs: list[tuple[float, int, int, dict]] = []
    for j, track in enumerate(tracks):
        if n_obj == 0 or len(track.mjd) == 0:
            continue
        cols = predictions.columns(np.asarray(track.mjd, dtype=float))
        pra, pdec = predictions.ra[:, cols], predictions.dec[:, cols]
        dra = ((np.asarray(track.ra)[None] - pra + 180.0) % 360.0 - 180.0) * np.cos(
            np.radians(pdec)
        )
        off = np.hypot(dra, np.asarray(track.dec)[None] - pdec) * 3600.0
        rms = np.sqrt(np.mean(off**2, axis=1))
        worst = off.max(axis=1)
        tol = np.minimum(
            max_tolerance_arcsec, n_sigma * np.hypot(predictions.sigma_arcsec, track.err_arcsec)
        )
        ok = (rms <= tol) & (worst <= 2.0 * tol)
        motion = _track_motion(track)
        dv = np.zeros(n_obj)
        if motion is not None:
            velocity, span = motion
            pv = np.column_stack(
                [
                    predictions.ra_rate[:, cols].mean(axis=1),
                    predictions.dec_rate[:, cols].mean(axis=1),
                ]
            )
            dv = np.linalg.norm(pv - velocity[None], axis=1)
            ok &= dv <= np.maximum(min_rate_tolerance, 2.0 * tol / span)
        for i in np.flatnonzero(ok).tolist():
            detail: dict[str, Any] = {
                "offset_arcsec": float(rms[i]),
                "max_offset_arcsec": float(worst[i]),
                "rate_difference_arcsec_per_hour": float(dv[i]) if motion is not None else None,
                "tolerance_arcsec": float(tol[i]),
                "predicted_v": _finite(np.nanmean(predictions.v_mag[i, cols])),
            }
            pairs.append((float(rms[i]), j, int(i), detail))
    pairs.sort(key=lambda p: (p[0], p[1], p[2]))
    taken_tracks: dict[int, Identification] = {}
    taken_objects: set[int] = set()
    for _, j, i, detail in pairs:
        if j in taken_tracks or i in taken_objects:
            continue
        taken_tracks[j] = Identification(
            track_id=tracks[j].id, known=predictions.objects[i], **detail
        )
        taken_objects.add(i)
    reason = (
        "no catalogued object predicted within tolerance"
        if n_obj
        else "no catalogued object predicted near the field"
    )
    return [
        taken_tracks.get(j, Identification(track_id=t.id, reason=reason))
        for j, t in enumerate(tracks)
    ]


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _position_angle(ra_rate: float, dec_rate: float) -> float:
    return float(np.degrees(np.arctan2(ra_rate, dec_rate)) % 360.0)


def identify_tracks(
    tracks: Sequence[ObservedTrack],
    predictions: KnownPredictions,
    *,
    footprint: Footprint,
    frame_mjd: np.ndarray,
    source: str = "mpcorb",
    catalog_size: int = 0,
    n_sigma: float = 3.0,
    max_tolerance_arcsec: float = 10.0,
) -> IdentifyResult:
    """Match the tracks and list every object predicted inside the field.

    Parameters
    ----------
    tracks : sequence of ObservedTrack
    predictions : KnownPredictions
        From `predict_catalog` or `predict_linear`, covering ``frame_mjd``
        and every track time.
    footprint : Footprint
    frame_mjd : array_like, shape (F,)
        The frames' UTC MJDs: an object counts as in the field when it is
        inside the footprint at one of them at least.
    source : str, keyword-only
        ``mpcorb`` or ``skybot``, recorded in the result.
    catalog_size : int, keyword-only
        Orbits searched (for the record).
    n_sigma, max_tolerance_arcsec : float, keyword-only
        Passed to `match_tracks`.

    Returns
    -------
    IdentifyResult
    """
    identifications = match_tracks(
        tracks, predictions, n_sigma=n_sigma, max_tolerance_arcsec=max_tolerance_arcsec
    )
    matched = {ident.known.designation: ident.track_id for ident in identifications if ident.known}
    frame_mjd = np.asarray(frame_mjd, dtype=float)
    in_field: list[FieldObject] = []
    if predictions.objects:
        cols = predictions.columns(frame_mjd)
        inside = np.zeros(len(predictions.objects), dtype=bool)
        for c in cols:
            inside |= footprint.contains(predictions.ra[:, c], predictions.dec[:, c])
        mid = 0.5 * (frame_mjd.min() + frame_mjd.max())
        k = int(np.argmin(np.abs(predictions.mjd - mid)))
        x, y = footprint.wcs.all_world2pix(
            predictions.ra[:, k], predictions.dec[:, k], 0, quiet=True
        )
        for i in np.flatnonzero(inside):
            obj = predictions.objects[i]
            ra_rate, dec_rate = float(predictions.ra_rate[i, k]), float(predictions.dec_rate[i, k])
            in_field.append(
                FieldObject(
                    known=obj,
                    mjd=float(predictions.mjd[k]),
                    ra=float(predictions.ra[i, k]),
                    dec=float(predictions.dec[i, k]),
                    x=float(x[i]),
                    y=float(y[i]),
                    predicted_v=_finite(predictions.v_mag[i, k]),
                    rate_arcsec_per_hour=float(np.hypot(ra_rate, dec_rate)),
                    position_angle_deg=_position_angle(ra_rate, dec_rate),
                    track_id=matched.get(obj.designation),
                )
            )
    in_field.sort(key=lambda f: (f.predicted_v is None, f.predicted_v or 0.0))
    return IdentifyResult(
        tracks=identifications,
        known_in_field=in_field,
        catalog_size=catalog_size,
        candidates=len(predictions.objects),
        source=source,
    )
