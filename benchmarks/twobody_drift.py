"""How far two-body predictions drift from an n-body integration, by time from the epoch.

Measures the number behind `detectors.predict.two_body_drift_arcsec` and
the README: 150 synthetic main-belt orbits and (5945) Roachapproach, given
osculating elements at the Lowell orbit's epoch (JD 2458600.5), are
integrated with REBOUND's IAS15 among the Sun, the eight planets and the
Moon (initial states from astropy's built-in ephemeris, masses from the
IAU), and compared with our two-body propagation of the same elements at
+-7 to 730 days. The error is the position difference seen from the
geocentre, in arcsec.

REBOUND is not a dependency of AstroHunter (the identification runs
two-body); install it to run this::

    .venv/bin/pip install rebound
    .venv/bin/python benchmarks/twobody_drift.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import get_body_barycentric_posvel
from astropy.time import Time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.ephemeris import (  # noqa: E402
    GAUSS_K,
    _heliocentric,
    _orientation,
    ephemerides,
    observer_states,
)
from detectors.observatories import Site  # noqa: E402
from detectors.orbit_sim import concatenate, main_belt_catalog  # noqa: E402
from detectors.orbits import load_catalog  # noqa: E402

EPOCH = 58600.0  # TT MJD of mpcorb_5945.dat (K194R)
LOWELL_ORBIT = ROOT.parent / "shared" / "data" / "real" / "lowell42-5945-roachapproach"
#: Sun / body mass ratios (IAU 2015 nominal; Earth and Moon apart).
MASS_RATIOS = {
    "mercury": 6023600.0,
    "venus": 408523.71,
    "earth": 332946.050895,
    "moon": 27068700.387534,
    "mars": 3098708.0,
    "jupiter": 1047.3486,
    "saturn": 3497.898,
    "uranus": 22902.98,
    "neptune": 19412.24,
}
DAYS = (7, 30, 100, 200, 365, 730)


def _state(body: str, t: Time) -> tuple[np.ndarray, np.ndarray]:
    p, v = get_body_barycentric_posvel(body, t, ephemeris="builtin")
    return p.xyz.to_value(u.au), v.xyz.to_value(u.au / u.day)


def main() -> int:
    try:
        import rebound
    except ImportError:
        print("needs REBOUND: .venv/bin/pip install rebound", file=sys.stderr)
        return 2
    synthetic = main_belt_catalog(3000, seed=11, epoch_mjd=EPOCH)
    keep = np.flatnonzero((synthetic.a > 2.1) & (synthetic.a < 3.3) & (synthetic.e < 0.4))[:150]
    catalog = concatenate(load_catalog(LOWELL_ORBIT / "mpcorb_5945.dat"), synthetic.take(keep))

    sim = rebound.Simulation()
    sim.G = GAUSS_K**2
    sim.integrator = "ias15"
    t0 = Time(EPOCH, format="mjd", scale="tt")
    sun_p, sun_v = _state("sun", t0)
    sim.add(m=1.0, x=sun_p[0], y=sun_p[1], z=sun_p[2], vx=sun_v[0], vy=sun_v[1], vz=sun_v[2])
    for body, ratio in MASS_RATIOS.items():
        p, v = _state(body, t0)
        sim.add(m=1.0 / ratio, x=p[0], y=p[1], z=p[2], vx=v[0], vy=v[1], vz=v[2])
    n_massive = sim.N
    pos, vel = _heliocentric(catalog, _orientation(catalog), np.full(len(catalog), EPOCH))
    for p, v in zip(pos + sun_p, vel + sun_v, strict=True):
        sim.add(m=0.0, x=p[0], y=p[1], z=p[2], vx=v[0], vy=v[1], vz=v[2])
    sim.N_active = n_massive

    print("days  (5945)   main belt: median    90 %      max   [arcsec, seen from the geocentre]")
    for sign in (-1, 1):
        run = sim.copy()
        for days in DAYS:
            run.integrate(sign * days)
            sun = np.array(run.particles[0].xyz)
            nbody = np.array([run.particles[n_massive + i].xyz for i in range(len(catalog))]) - sun
            t = EPOCH + sign * days
            two_body, _ = _heliocentric(catalog, _orientation(catalog), np.full(len(catalog), t))
            delta = ephemerides(catalog, observer_states(Site.geocentre(), np.array([t]))).delta[
                :, 0
            ]
            err = np.linalg.norm(nbody - two_body, axis=1) / delta * 206264.806
            print(
                f"{sign * days:+5d} {err[0]:8.2f} {np.median(err[1:]):17.2f} "
                f"{np.percentile(err[1:], 90):8.2f} {err[1:].max():8.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
