"""Where known objects should be: predictions at the tracks' own times.

Identification compares tracks with predictions, whatever their source:

- `predict_catalog`: the whole orbit catalogue. A cheap prefilter propagates
  every orbit once, at mid-sequence, and keeps those that can be near the
  field; the few left get exact topocentric, light-time corrected
  ephemerides (`detectors.ephemeris`) at every frame and track time.
- `predict_linear`: positions and rates at one epoch (a SkyBoT answer),
  carried along straight lines.

Each object's one-sigma error (`KnownPredictions.sigma_arcsec`) combines the
prediction method's own error (1" by default; the measured error on (5945),
32 days from its epoch, is 0.26", max 0.41"), the two-body drift, which
grows as the square of the time from the orbit's epoch
(`two_body_drift_arcsec`: 2.7" at 100 days), and the orbit's uncertainty
(the MPC's U parameter, `orbit_uncertainty_arcsec`, or SkyBoT's
``ErrPos``). With the 10" cap of the match tolerance, identification loses
objects beyond ~150 days from the catalogue's epoch: use a catalogue of that
time, or SkyBoT.

Times are UTC MJD; positions ICRS degrees; errors arcsec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from .ephemeris import ephemerides, observer_states, quick_positions
from .observatories import Site
from .orbits import OrbitCatalog

__all__ = [
    "Footprint",
    "KnownObject",
    "KnownPredictions",
    "orbit_uncertainty_arcsec",
    "predict_catalog",
    "predict_linear",
    "separation_deg",
    "two_body_drift_arcsec",
]

_DAYS_PER_DECADE = 3652.5
_DIURNAL = 2.0 * np.pi / 24.0  # rad per hour
_EARTH_RADIUS_AU = 6378.137 / 149597870.7


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
        return float(cra), float(cdec), float(np.max(separation_deg(ra, dec, cra, cdec)))


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


def separation_deg(ra1: np.ndarray, dec1: np.ndarray, ra2: float, dec2: float) -> np.ndarray:
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
        near = np.flatnonzero(separation_deg(ra, dec, cra, cdec) <= reach)
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
