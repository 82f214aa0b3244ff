"""Simulated fields whose movers have real orbits, and the MPCORB file that knows some of them.

`simulate_field` moves its objects along great circles at chosen rates; to
test known-object identification the movers need orbits. Here each mover is
given osculating elements (`detectors.orbit_sim.orbits_through_field`)
whose topocentric ephemeris crosses the field during the sequence, and the
simulator draws it where that ephemeris says, exposure by exposure. Some of
the orbits are written to an MPCORB file (the "catalogued" ones, named in
the truth with their designation); the others are new.

The frames' headers carry the observing site (``LATITUDE``, ``LONGITUD``,
``ALTITUDE``, ``MPCCODE``), so the identification finds the observer as it
would in real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.wcs import WCS

from .ephemeris import ephemerides, observer_states
from .observatories import Site
from .orbit_sim import (
    catalog_from_elements,
    mpcorb_text,
    orbits_through_field,
    provisional_designations,
)
from .orbits import OrbitCatalog, pack_designation
from .predict import Footprint
from .simulate import SimulatedField, simulate_field

__all__ = ["OrbitField", "simulate_orbit_field"]

#: Lowell Observatory, Anderson Mesa (MPC 688), as the Lowell frames' headers give it.
DEFAULT_SITE = (-111.5355, 35.09675, 2206.0, "688")


@dataclass
class OrbitField:
    """A simulated field with orbit-driven movers.

    Attributes
    ----------
    field : SimulatedField
        Frames and truth; each truth object has ``designation`` (readable,
        or None when not catalogued), ``packed`` and ``catalogued``.
    orbits : OrbitCatalog
        Every mover's orbit, in truth order.
    catalogued : ndarray of bool
        Which movers the MPCORB text holds.
    mpcorb : str
        MPCORB.DAT text with the catalogued orbits.
    """

    field: SimulatedField
    orbits: OrbitCatalog
    catalogued: np.ndarray
    mpcorb: str


def _designations(n: int, catalogued: np.ndarray, first_number: int) -> list[str]:
    """Numbered (even) and provisional (odd) designations for the catalogued movers."""
    provisional = iter(provisional_designations(np.arange(n), year0=2091))
    names = []
    for i in range(n):
        name = next(provisional)
        if catalogued[i] and i % 2 == 0:
            name = f"({first_number + i})"
        names.append(name)
    return names


def simulate_orbit_field(
    *,
    seed: int,
    n_objects: int = 8,
    catalogued_fraction: float = 0.5,
    site: tuple[float, float, float, str] = DEFAULT_SITE,
    neo_fraction: float = 0.1,
    **kwargs: Any,
) -> OrbitField:
    """`simulate_field` with movers on real orbits, and an MPCORB file of some of them.

    Parameters
    ----------
    seed : int, keyword-only
        Seeds the field and the orbits.
    n_objects : int, keyword-only
        Movers.
    catalogued_fraction : float, keyword-only
        Share of movers written to the MPCORB text (at least one when > 0).
    site : (lon_deg east, lat_deg, height_m, code), keyword-only
        Observatory; written to every header.
    neo_fraction : float, keyword-only
        Share of movers on near-Earth orbits (heliocentric distance 1.05-1.5 AU).
    **kwargs
        Passed to `simulate_field` (``shape``, ``n_frames``, ``snr_range``,
        ``ra``, ``dec``, ``mjd_start``...). ``rate_range`` is ignored: the
        orbits set the rates.

    Returns
    -------
    OrbitField
    """
    if not 0.0 <= catalogued_fraction <= 1.0:
        raise ValueError(f"catalogued_fraction={catalogued_fraction}: give 0 to 1")
    lon, lat, height, code = site
    observer = Site.from_geodetic(lon, lat, height, code=code, source="simulated site")
    made: dict[str, Any] = {}

    def place(
        rng: np.random.Generator,
        *,
        n_objects: int,
        ref: WCS,
        wcses: list[WCS],
        shape: tuple[int, int],
        hours: np.ndarray,
        half_exposure_h: float,
        margin: float,
        mjd_mid: np.ndarray,
        **_: Any,
    ) -> dict[str, Any]:
        edges = np.concatenate([mjd_mid - half_exposure_h / 24.0, mjd_mid + half_exposure_h / 24.0])
        elements, _states = orbits_through_field(
            rng,
            n_objects,
            footprint=Footprint(ref, shape),
            mjd=edges,
            site=observer,
            edge_px=margin,
            neo_fraction=neo_fraction,
        )
        n_cat = round(catalogued_fraction * n_objects)
        if catalogued_fraction > 0:
            n_cat = max(n_cat, 1)
        catalogued = np.zeros(n_objects, dtype=bool)
        catalogued[rng.permutation(n_objects)[:n_cat]] = True
        names = _designations(n_objects, catalogued, first_number=1_100_000 + 100 * seed)
        orbits = catalog_from_elements(
            elements,
            epoch_mjd=float(elements["epoch_mjd"][0]),
            packed=[pack_designation(n) for n in names],
            readable=names,
            h=elements["h"],
        )
        eph = ephemerides(orbits, observer_states(observer, mjd_mid))
        xy = [wcs.wcs_world2pix(eph.ra[:, k], eph.dec[:, k], 0) for k, wcs in enumerate(wcses)]
        mid = eph.ra.shape[1] // 2

        def positions(owner: np.ndarray, mjd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            times, col = np.unique(np.asarray(mjd, float), return_inverse=True)
            exact = ephemerides(orbits, observer_states(observer, times))
            return exact.ra[owner, col], exact.dec[owner, col]

        made.update(orbits=orbits, catalogued=catalogued)
        return {
            "rate": np.hypot(eph.ra_rate[:, mid], eph.dec_rate[:, mid]),
            "pa": np.degrees(np.arctan2(eph.ra_rate[:, mid], eph.dec_rate[:, mid])) % 360.0,
            "ra": eph.ra,
            "dec": eph.dec,
            "x": np.array([p[0] for p in xy]).T,
            "y": np.array([p[1] for p in xy]).T,
            "hours": hours,
            "mjd_mid": mjd_mid,
            "positions": positions,
            "labels": [
                {
                    "designation": orbits.designation(i) if catalogued[i] else None,
                    "packed": orbits.packed[i].decode().strip() if catalogued[i] else None,
                    "catalogued": bool(catalogued[i]),
                    "predicted_v": float(np.nanmean(eph.v_mag[i])),
                }
                for i in range(n_objects)
            ],
        }

    kwargs.pop("rate_range", None)
    field = simulate_field(seed=seed, n_objects=n_objects, place_movers=place, **kwargs)
    for _, _, header in field.frames:
        header["LATITUDE"] = (lat, "latitude, degrees")
        header["LONGITUD"] = (lon, "east longitude, degrees")
        header["ALTITUDE"] = (height, "altitude in meters")
        header["MPCCODE"] = (code, "MPC observatory code")
    orbits: OrbitCatalog = made["orbits"]
    catalogued: np.ndarray = made["catalogued"]
    return OrbitField(
        field=field,
        orbits=orbits,
        catalogued=catalogued,
        mpcorb=mpcorb_text(orbits.take(np.flatnonzero(catalogued))),
    )
