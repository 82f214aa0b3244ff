"""Where catalogued asteroids appear: vectorised two-body ephemerides.

Every orbit of an `OrbitCatalog` is propagated at once with array
operations: Kepler's equation by Newton's method from the osculating
elements (two-body, heliocentric, Gaussian gravitational constant),
ecliptic J2000 to ICRS (obliquity 84381.448", then the IAU 2006 frame bias),
the Sun and the Earth from astropy's built-in ephemeris (ERFA, offline), the
observer on the Earth (ITRS -> GCRS through astropy, with its bundled IERS
tables and downloads off), and light time by iteration. The result is the
astrometric ICRS direction from the observer (no aberration, no light
deflection), the frame of star catalogues and of the MPC's astrometry.

Accuracy. Against the measured positions of (5945) Roachapproach in the
Lowell frames (``truth_5945_positions.csv``, 67 frames), 32 days before the
orbit's epoch, the prediction is off by 0.26" on average (max 0.41",
scatter 0.05"), almost all along RA; an n-body integration of the same
elements (REBOUND, `benchmarks/twobody_drift.py`) moves (5945) by 0.28"
there, so the planets' perturbations, which two-body ignores, explain it.
They grow as the square of the time from the epoch: for main-belt orbits
the median two-body error is 0.2" at 30 days, 2.7" at 100 days, 11" at 200
days and 35" at a year. MPCORB's epoch is refreshed to within ~100 days of
its date, so use a catalogue whose epoch is near the images (or SkyBoT,
which integrates); `detectors.predict.two_body_drift_arcsec` widens the
match tolerance accordingly.

Orbits with e >= 1 are not propagated (`parse_mpcorb` skips them).
"""

from __future__ import annotations

from dataclasses import dataclass

import erfa
import numpy as np
from astropy import units as u
from astropy.coordinates import get_body_barycentric_posvel
from astropy.time import Time
from astropy.utils import iers

from .observatories import Site
from .orbits import OrbitCatalog

__all__ = [
    "ECLIPTIC_TO_ICRS",
    "Ephemeris",
    "ObserverStates",
    "apparent_magnitude",
    "ephemerides",
    "observer_states",
    "quick_positions",
]

GAUSS_K = 0.01720209895  # AU^(3/2) / day, heliocentric
C_AU_PER_DAY = 173.1446326846693
_OBLIQUITY_J2000 = np.radians(84381.448 / 3600.0)
_COS_EPS, _SIN_EPS = np.cos(_OBLIQUITY_J2000), np.sin(_OBLIQUITY_J2000)
#: Rotation from the ecliptic and equinox J2000 (MPCORB's frame) to ICRS: the
#: obliquity, then the transpose of the IAU 2006 frame bias.
ECLIPTIC_TO_ICRS = erfa.bp06(2451545.0, 0.0)[0].T @ np.array(
    [[1.0, 0.0, 0.0], [0.0, _COS_EPS, -_SIN_EPS], [0.0, _SIN_EPS, _COS_EPS]]
)
_ARCSEC_PER_HOUR = np.degrees(1.0) * 3600.0 / 24.0  # (rad/day) -> (arcsec/h)


@dataclass(frozen=True)
class ObserverStates:
    """The observer and the Sun at each time, barycentric ICRS.

    Attributes
    ----------
    mjd_utc, tdb_mjd : ndarray, shape (T,)
    observer_pos, observer_vel : ndarray, shape (T, 3)
        AU and AU/day.
    sun_pos, sun_vel : ndarray, shape (T, 3)
    """

    mjd_utc: np.ndarray
    tdb_mjd: np.ndarray
    observer_pos: np.ndarray
    observer_vel: np.ndarray
    sun_pos: np.ndarray
    sun_vel: np.ndarray


@dataclass(frozen=True)
class Ephemeris:
    """Predicted astrometric positions of N orbits at T times.

    Attributes
    ----------
    ra, dec : ndarray, shape (N, T)
        Astrometric ICRS, degrees.
    ra_rate, dec_rate : ndarray, shape (N, T)
        dRA cos(Dec)/dt and dDec/dt, arcsec/hour.
    delta, r : ndarray, shape (N, T)
        Distance from the observer and from the Sun, AU (at the light-time-corrected epoch).
    phase : ndarray, shape (N, T)
        Sun-object-observer angle, degrees.
    v_mag : ndarray, shape (N, T)
        Predicted V from H and G (NaN where H is unknown).
    """

    ra: np.ndarray
    dec: np.ndarray
    ra_rate: np.ndarray
    dec_rate: np.ndarray
    delta: np.ndarray
    r: np.ndarray
    phase: np.ndarray
    v_mag: np.ndarray


def observer_states(site: Site, mjd_utc: np.ndarray) -> ObserverStates:
    """Barycentric positions of the observer and the Sun at UTC MJDs (offline).

    Parameters
    ----------
    site : Site
        Where on the Earth (the geocentre for ``Site.geocentre()``).
    mjd_utc : array_like, shape (T,)

    Returns
    -------
    ObserverStates
    """
    mjd = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("auto_max_age", None):
        t = Time(mjd, format="mjd", scale="utc")
        earth_p, earth_v = get_body_barycentric_posvel("earth", t, ephemeris="builtin")
        sun_p, sun_v = get_body_barycentric_posvel("sun", t, ephemeris="builtin")
        obs_p = earth_p.xyz.to_value(u.au).T
        obs_v = earth_v.xyz.to_value(u.au / u.day).T
        if not site.is_geocentric:
            geo_p, geo_v = site.location.get_gcrs_posvel(t)
            obs_p = obs_p + geo_p.xyz.to_value(u.au).T
            obs_v = obs_v + geo_v.xyz.to_value(u.au / u.day).T
        tdb = t.tdb.mjd
    return ObserverStates(
        mjd_utc=mjd,
        tdb_mjd=np.atleast_1d(tdb),
        observer_pos=np.atleast_2d(obs_p),
        observer_vel=np.atleast_2d(obs_v),
        sun_pos=np.atleast_2d(sun_p.xyz.to_value(u.au).T),
        sun_vel=np.atleast_2d(sun_v.xyz.to_value(u.au / u.day).T),
    )


def _solve_kepler(mean_anomaly: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Eccentric anomaly E from E - e sin E = M (radians), Newton on the whole array."""
    m = np.remainder(mean_anomaly + np.pi, 2.0 * np.pi) - np.pi
    e = np.broadcast_to(e, m.shape)
    ecc = np.where(e > 0.8, np.pi * np.sign(m), m + e * np.sin(m))
    for _ in range(6):
        step = (ecc - e * np.sin(ecc) - m) / (1.0 - e * np.cos(ecc))
        ecc = ecc - step
    todo = np.flatnonzero(np.abs(step) > 1e-12)
    for _ in range(50):  # the few high-e orbits not converged yet
        if todo.size == 0:
            break
        ef, mf, ec = e.ravel()[todo], m.ravel()[todo], ecc.ravel()[todo]
        step = (ec - ef * np.sin(ec) - mf) / (1.0 - ef * np.cos(ec))
        ecc.ravel()[todo] = ec - step
        todo = todo[np.abs(step) > 1e-12]
    return ecc


def _orientation(catalog: OrbitCatalog) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors P (to perihelion) and Q of each orbit, ICRS, shape (N, 3) each."""
    w, node, inc = (
        np.radians(v) for v in (catalog.arg_perihelion, catalog.node, catalog.inclination)
    )
    cw, sw, cn, sn, ci, si = (
        np.cos(w),
        np.sin(w),
        np.cos(node),
        np.sin(node),
        np.cos(inc),
        np.sin(inc),
    )
    p_ecl = np.stack([cw * cn - sw * sn * ci, cw * sn + sw * cn * ci, sw * si], axis=-1)
    q_ecl = np.stack([-sw * cn - cw * sn * ci, -sw * sn + cw * cn * ci, cw * si], axis=-1)
    return p_ecl @ ECLIPTIC_TO_ICRS.T, q_ecl @ ECLIPTIC_TO_ICRS.T


def _heliocentric(
    catalog: OrbitCatalog, pq: tuple[np.ndarray, np.ndarray], tdb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Heliocentric ICRS position (AU) and velocity (AU/day), shape tdb.shape + (3,).

    ``tdb`` has shape (N, T) (or (N,)): one time per orbit and column.
    """
    extra = (slice(None),) + (None,) * (tdb.ndim - 1)
    n_rad = np.radians(catalog.n)[extra]
    e = catalog.e[extra]
    a = catalog.a[extra]
    mean = np.radians(catalog.mean_anomaly)[extra] + n_rad * (tdb - catalog.epoch_mjd[extra])
    ecc = _solve_kepler(mean, e)
    cos_e, sin_e = np.cos(ecc), np.sin(ecc)
    root = np.sqrt(1.0 - e * e)
    x, y = a * (cos_e - e), a * root * sin_e
    edot = n_rad / (1.0 - e * cos_e)
    vx, vy = -a * sin_e * edot, a * root * cos_e * edot
    p, q = (v[(slice(None),) + (None,) * (tdb.ndim - 1)] for v in pq)
    pos = x[..., None] * p + y[..., None] * q
    vel = vx[..., None] * p + vy[..., None] * q
    return pos, vel


def apparent_magnitude(
    h: np.ndarray, g: np.ndarray, r: np.ndarray, delta: np.ndarray, phase_deg: np.ndarray
) -> np.ndarray:
    """V from the IAU H, G system (Bowell et al. 1989): NaN where H is NaN."""
    tan_half = np.tan(np.radians(phase_deg) / 2.0)
    phi1 = np.exp(-3.33 * tan_half**0.63)
    phi2 = np.exp(-1.87 * tan_half**1.22)
    return h + 5.0 * np.log10(r * delta) - 2.5 * np.log10((1.0 - g) * phi1 + g * phi2)


def _radec(vec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dist = np.linalg.norm(vec, axis=-1)
    ra = np.degrees(np.arctan2(vec[..., 1], vec[..., 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(vec[..., 2] / dist, -1.0, 1.0)))
    return ra, dec, dist


def _rates(
    ra: np.ndarray, dec: np.ndarray, rel_vel: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sky motion (arcsec/h) of a body with relative velocity ``rel_vel`` (AU/day)."""
    a, d = np.radians(ra), np.radians(dec)
    e_ra = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)], axis=-1)
    e_dec = np.stack([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)], axis=-1)
    scale = _ARCSEC_PER_HOUR / delta
    return (rel_vel * e_ra).sum(-1) * scale, (rel_vel * e_dec).sum(-1) * scale


def ephemerides(
    catalog: OrbitCatalog, states: ObserverStates, *, light_time_iterations: int = 3
) -> Ephemeris:
    """Astrometric positions of every orbit at every time of ``states``.

    Parameters
    ----------
    catalog : OrbitCatalog
        N orbits (take a prefiltered subset for a full catalogue: cost is N x T).
    states : ObserverStates
        T times, from `observer_states`.
    light_time_iterations : int, keyword-only
        Iterations of the light-time correction (3 converge to well under a
        millisecond of time for anything beyond the Moon).

    Returns
    -------
    Ephemeris
        Arrays of shape (N, T).
    """
    pq = _orientation(catalog)
    n = len(catalog)
    tdb = np.broadcast_to(states.tdb_mjd[None, :], (n, states.tdb_mjd.size))
    obs = states.observer_pos[None, :, :]
    tau = np.zeros(tdb.shape)
    for _ in range(max(1, light_time_iterations) + 1):
        helio, vel = _heliocentric(catalog, pq, tdb - tau)
        sun = states.sun_pos[None] - states.sun_vel[None] * tau[..., None]
        topo = sun + helio - obs
        tau = np.linalg.norm(topo, axis=-1) / C_AU_PER_DAY
    ra, dec, delta = _radec(topo)
    rel_vel = vel + states.sun_vel[None] - states.observer_vel[None]
    ra_rate, dec_rate = _rates(ra, dec, rel_vel, delta)
    r = np.linalg.norm(helio, axis=-1)
    cos_phase = np.clip((helio * topo).sum(-1) / (r * delta), -1.0, 1.0)
    phase = np.degrees(np.arccos(cos_phase))
    with np.errstate(invalid="ignore"):
        v_mag = apparent_magnitude(catalog.h[:, None], catalog.g[:, None], r, delta, phase)
    return Ephemeris(
        ra=ra,
        dec=dec,
        ra_rate=ra_rate,
        dec_rate=dec_rate,
        delta=delta,
        r=r,
        phase=phase,
        v_mag=v_mag,
    )


def quick_positions(
    catalog: OrbitCatalog, states: ObserverStates, index: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cheap positions of every orbit at one time, for a prefilter.

    One Kepler solution per orbit; light time to first order (the position
    moved back along the velocity by Delta/c). Off the exact ephemeris by
    well under an arcsecond for anything beyond 0.01 AU.

    Parameters
    ----------
    catalog : OrbitCatalog
    states : ObserverStates
    index : int
        Which of the states' times.

    Returns
    -------
    ra, dec : ndarray, shape (N,)
        Degrees.
    delta : ndarray, shape (N,)
        AU.
    rate : ndarray, shape (N,)
        Total sky motion, arcsec/hour.
    """
    pq = _orientation(catalog)
    helio, vel = _heliocentric(catalog, pq, np.full(len(catalog), states.tdb_mjd[index]))
    topo = states.sun_pos[index] + helio - states.observer_pos[index]
    tau = np.linalg.norm(topo, axis=-1) / C_AU_PER_DAY
    topo = topo - (vel + states.sun_vel[index]) * tau[:, None]
    ra, dec, delta = _radec(topo)
    rel_vel = vel + states.sun_vel[index] - states.observer_vel[index]
    ra_rate, dec_rate = _rates(ra, dec, rel_vel, delta)
    return ra, dec, delta, np.hypot(ra_rate, dec_rate)
