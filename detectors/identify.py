"""Is it new? Tracks matched to known objects, and what was predicted in the field.

Two steps, whatever the source of the predictions:

1. Predictions of candidate known objects at the tracks' own observation
   times (`KnownPredictions`): from the whole orbit catalogue
   (`predict_catalog`: a cheap prefilter of every orbit around the field at
   mid-sequence, then exact topocentric ephemerides of the few left) or from
   a SkyBoT answer (`predict_linear`: positions and rates at one epoch).
2. `match_tracks`: a track matches an object when the predicted positions
   agree with the measured ones at every observation time (RMS offset within
   the object's tolerance, no single offset beyond twice it) and the motion
   agrees; the closest pair wins and each object labels at most one track.

The tolerance of an object is ``n_sigma * hypot(prediction error, two-body
drift, orbit uncertainty, track astrometric error)``, capped at
``max_tolerance_arcsec`` (10" by default). The prediction error defaults to
1" (the measured error on (5945), 32 days from its epoch, is 0.26", max
0.41"); the drift grows as the square of the time from the orbit's epoch
(`two_body_drift_arcsec`: 2.7" at 100 days); the orbit uncertainty comes
from the MPC's U parameter (runoff of ~exp(1.5 U)" per decade, scaled by
the time since the last observation) or from SkyBoT's ``ErrPos``. Beyond
~150 days from the catalogue's epoch the cap starts to lose objects: use a
catalogue of that time, or SkyBoT.

Times are UTC MJD; positions ICRS degrees; offsets and tolerances arcsec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS

from .ephemeris import ephemerides, observer_states, quick_positions
from .observatories import Site
from .orbits import OrbitCatalog

__all__ = [
    "FieldObject",
    "Footprint",
    "Identification",
    "IdentifyResult",
    "KnownObject",
    "KnownPredictions",
    "ObservedTrack",
    "identify_tracks",
    "match_tracks",
    "orbit_uncertainty_arcsec",
    "predict_catalog",
    "predict_linear",
    "two_body_drift_arcsec",
]

_DAYS_PER_DECADE = 3652.5
_DIURNAL = 2.0 * np.pi / 24.0  # rad per hour
_EARTH_RADIUS_AU = 6378.137 / 149597870.7


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
class Footprint:
    """The searched field: a celestial WCS and the image shape (H, W), 0-based pixels."""

    wcs: WCS
    shape: tuple[int, int]

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        x, y = self.wcs.all_world2pix(ra, dec, 0, quiet=True)
        h, w = self.shape
        return (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)

    def centre_radius(self) -> tuple[float, float, float]:
        """Centre RA, Dec and the radius (deg) of a circle through the corners."""
        h, w = self.shape
        corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]])
        ra, dec = self.wcs.all_pix2world(corners[:, 0], corners[:, 1], 0)
        cra, cdec = self.wcs.all_pix2world((w - 1) / 2.0, (h - 1) / 2.0, 0)
        return float(cra), float(cdec), float(np.max(_separation(ra, dec, cra, cdec)))


@dataclass(frozen=True)
class KnownObject:
    """A catalogued object, as reports name it.

    ``designation`` is what a user reads (``(5945) Roachapproach``,
    ``2019 AA``); ``packed`` the MPC's packed form when known; ``number`` and
    ``name`` when numbered (and named); ``source`` ``mpcorb`` or ``skybot``.
    """

    designation: str
    packed: str | None = None
    number: int | None = None
    name: str | None = None
    source: str = "mpcorb"


@dataclass(frozen=True)
class KnownPredictions:
    """Predicted positions of N candidate objects at T times.

    Attributes
    ----------
    mjd : ndarray, shape (T,)
    ra, dec : ndarray, shape (N, T)
    ra_rate, dec_rate : ndarray, shape (N, T)
        dRA cos(Dec)/dt, dDec/dt, arcsec/hour.
    v_mag : ndarray, shape (N, T)
    sigma_arcsec : ndarray, shape (N,)
        One-sigma error of each object's prediction: the prediction method's
        own error and the orbit's (or SkyBoT's) uncertainty, combined.
    objects : list of KnownObject, length N
    """

    mjd: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    ra_rate: np.ndarray
    dec_rate: np.ndarray
    v_mag: np.ndarray
    sigma_arcsec: np.ndarray
    objects: list[KnownObject]

    def columns(self, mjd: np.ndarray) -> np.ndarray:
        """Indices of ``mjd`` among the predicted times (to 0.01 s)."""
        idx = np.clip(np.searchsorted(self.mjd, mjd), 0, self.mjd.size - 1)
        left = np.clip(idx - 1, 0, self.mjd.size - 1)
        idx = np.where(np.abs(self.mjd[left] - mjd) < np.abs(self.mjd[idx] - mjd), left, idx)
        if np.any(np.abs(self.mjd[idx] - mjd) > 1e-7):
            raise ValueError("a track time has no prediction: predict at the tracks' own times")
        return idx


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


def _separation(ra1: np.ndarray, dec1: np.ndarray, ra2: float, dec2: float) -> np.ndarray:
    """Great-circle distance in degrees (haversine)."""
    r1, d1, r2, d2 = (np.radians(v) for v in (ra1, dec1, ra2, dec2))
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def orbit_uncertainty_arcsec(
    uncertainty: np.ndarray, last_obs_mjd: np.ndarray, mjd: float
) -> np.ndarray:
    """Along-track uncertainty from the MPC's U parameter, arcsec.

    U is defined from the runoff in longitude per decade: U = 0 below 1",
    each step a factor ~4.5 (exp(1.5)), U = 9 beyond 40 deg. Scaled by the
    time from the last observation (at least one year); unknown U (-1) or
    ``E``/``F`` orbits count as U = 9 (no match unless close by chance).
    """
    u = np.where(uncertainty < 0, 9, uncertainty).astype(float)
    runoff = np.exp(1.5 * u)
    since = np.abs(mjd - np.where(np.isfinite(last_obs_mjd), last_obs_mjd, mjd - 3652.5))
    return runoff * np.maximum(since, 365.25) / _DAYS_PER_DECADE


def two_body_drift_arcsec(days_from_epoch: np.ndarray) -> np.ndarray:
    """Typical error of a two-body prediction this far from the orbit's epoch, arcsec.

    Planetary perturbations move a main-belt asteroid away from its osculating
    ellipse roughly as the square of the time: against a REBOUND integration
    (Sun, planets and Moon; `benchmarks/twobody_drift.py`) the median error of
    150 main-belt orbits is 0.2" at 30 days, 2.7" at 100 days, 11" at 200
    days and 35" at a year (the 90th percentiles are 3-4 times larger).
    """
    return 2.7 * (np.asarray(days_from_epoch, dtype=float) / 100.0) ** 2


def _objects(catalog: OrbitCatalog) -> list[KnownObject]:
    out = []
    for i in range(len(catalog)):
        readable = catalog.designation(i)
        number = int(catalog.number[i])
        name = None
        if number >= 0 and readable.startswith(f"({number})"):
            name = readable[len(f"({number})") :].strip() or None
        out.append(
            KnownObject(
                designation=readable,
                packed=catalog.packed[i].decode("ascii").strip(),
                number=number if number >= 0 else None,
                name=name,
                source="mpcorb",
            )
        )
    return out


def predict_catalog(
    catalog: OrbitCatalog,
    mjd: np.ndarray,
    *,
    site: Site,
    footprint: Footprint,
    prediction_error_arcsec: float = 1.0,
    margin_arcsec: float = 120.0,
) -> KnownPredictions:
    """Exact predictions for the orbits that can be near the field during ``mjd``.

    The prefilter propagates every orbit once, at mid-sequence (one Kepler
    solution per orbit, light time to first order), and keeps those within
    the field's radius plus their own motion over half the sequence, their
    topocentric parallax bound and ``margin_arcsec``. Those few get exact
    topocentric, light-time corrected ephemerides at every time.

    Parameters
    ----------
    catalog : OrbitCatalog
    mjd : array_like, shape (T,)
        UTC MJDs: the frames' and the tracks' times (mid-sequence is added).
    site : Site
    footprint : Footprint
    prediction_error_arcsec : float, keyword-only
        One-sigma error of the two-body prediction itself (measured: 0.26"
        mean, 0.41" max on (5945), 32 days from the epoch).
    margin_arcsec : float, keyword-only
        Extra prefilter radius (the prefilter's own error is under 1").

    Returns
    -------
    KnownPredictions
        At the sorted unique times plus mid-sequence.
    """
    times = np.unique(np.append(np.asarray(mjd, dtype=float), 0.5 * (np.min(mjd) + np.max(mjd))))
    mid = 0.5 * (times[0] + times[-1])
    states = observer_states(site, times)
    k_mid = int(np.argmin(np.abs(times - mid)))
    cra, cdec, radius = footprint.centre_radius()
    half_span_h = 0.5 * (times[-1] - times[0]) * 24.0
    if len(catalog):
        ra, dec, delta, rate = quick_positions(catalog, states, k_mid)
        parallax = np.degrees(_EARTH_RADIUS_AU / delta) * 3600.0
        reach = radius + (rate * half_span_h + parallax + margin_arcsec) / 3600.0
        near = np.flatnonzero(_separation(ra, dec, cra, cdec) <= reach)
    else:
        near = np.zeros(0, dtype=np.int64)
    subset = catalog.take(near)
    eph = ephemerides(subset, states)
    sigma = np.hypot(
        orbit_uncertainty_arcsec(subset.uncertainty, subset.last_obs_mjd, mid),
        two_body_drift_arcsec(np.abs(states.tdb_mjd[k_mid] - subset.epoch_mjd)),
    )
    return KnownPredictions(
        mjd=times,
        ra=eph.ra,
        dec=eph.dec,
        ra_rate=eph.ra_rate,
        dec_rate=eph.dec_rate,
        v_mag=eph.v_mag,
        sigma_arcsec=np.hypot(prediction_error_arcsec, sigma),
        objects=_objects(subset),
    )


def predict_linear(
    objects: Sequence[KnownObject],
    *,
    epoch_mjd: float,
    ra: np.ndarray,
    dec: np.ndarray,
    ra_rate: np.ndarray,
    dec_rate: np.ndarray,
    v_mag: np.ndarray,
    delta_au: np.ndarray,
    position_error_arcsec: np.ndarray,
    mjd: np.ndarray,
    prediction_error_arcsec: float = 1.0,
) -> KnownPredictions:
    """Predictions from positions and rates at one epoch (a SkyBoT answer).

    Positions move along straight lines on the tangent plane at the given
    rates. The diurnal parallax, which a straight line misses, bends the
    path by up to ``0.5 (2 pi / 24 h)^2 dt^2 R_earth/Delta``; that bound is
    added to each object's uncertainty.

    Parameters
    ----------
    objects : sequence of KnownObject, length N
    epoch_mjd : float, keyword-only
        UTC MJD of the given positions.
    ra, dec, ra_rate, dec_rate, v_mag, delta_au, position_error_arcsec : array_like (N,)
        Degrees; arcsec/hour (dRA cos Dec, dDec); V; AU; arcsec.
    mjd : array_like, shape (T,)
        Times to predict at.
    prediction_error_arcsec : float, keyword-only
        One-sigma error added to every object's own.

    Returns
    -------
    KnownPredictions
    """
    times = np.unique(np.asarray(mjd, dtype=float))
    dt_h = (times - epoch_mjd)[None, :] * 24.0
    ra, dec, ra_rate, dec_rate, v_mag, delta, err = (
        np.asarray(v, dtype=float).reshape(-1, 1)
        for v in (ra, dec, ra_rate, dec_rate, v_mag, delta_au, position_error_arcsec)
    )
    cos_dec = np.cos(np.radians(dec))
    pred_ra = (ra + ra_rate * dt_h / 3600.0 / cos_dec) % 360.0
    pred_dec = dec + dec_rate * dt_h / 3600.0
    bend = 0.5 * _DIURNAL**2 * np.max(dt_h**2) * np.degrees(_EARTH_RADIUS_AU / delta) * 3600.0
    sigma = np.hypot(err, bend)[:, 0]
    shape = pred_ra.shape
    return KnownPredictions(
        mjd=times,
        ra=pred_ra,
        dec=pred_dec,
        ra_rate=np.broadcast_to(ra_rate, shape).copy(),
        dec_rate=np.broadcast_to(dec_rate, shape).copy(),
        v_mag=np.broadcast_to(v_mag, shape).copy(),
        sigma_arcsec=np.hypot(prediction_error_arcsec, sigma),
        objects=list(objects),
    )


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
        for i in np.flatnonzero(ok):
            detail = {
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
