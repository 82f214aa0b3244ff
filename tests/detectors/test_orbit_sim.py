"""Synthetic orbits: state vectors to elements and back, a realistic catalogue, decoy clones."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.ephemeris import _heliocentric, _orientation
from detectors.orbit_sim import (
    catalog_from_elements,
    elements_from_state,
    main_belt_catalog,
    mpcorb_text,
)
from detectors.orbits import parse_mpcorb


def test_elements_survive_a_round_trip_through_a_state():
    catalog = main_belt_catalog(2000, seed=2, epoch_mjd=60000.0)
    pos, vel = _heliocentric(catalog, _orientation(catalog), catalog.epoch_mjd.copy())
    back = elements_from_state(pos, vel)
    assert back["a"] == pytest.approx(catalog.a, rel=1e-9)
    assert back["e"] == pytest.approx(catalog.e, abs=1e-9)
    assert back["inclination"] == pytest.approx(catalog.inclination, abs=1e-7)

    # Angles compared on the circle; the node is undefined at i = 0 and peri at e = 0.
    def circ(a, b):
        return np.abs((a - b + 180.0) % 360.0 - 180.0)

    ok = (catalog.inclination > 0.01) & (catalog.e > 1e-4)
    assert circ(back["node"], catalog.node)[ok].max() < 1e-6
    assert circ(back["arg_perihelion"], catalog.arg_perihelion)[ok].max() < 1e-5
    assert circ(back["mean_anomaly"], catalog.mean_anomaly)[ok].max() < 1e-5


def test_a_hyperbolic_state_has_no_elements():
    out = elements_from_state(np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 0.05, 0.0]]))
    assert np.isnan(out["a"][0]) and np.isnan(out["e"][0])


def test_the_synthetic_catalogue_looks_like_mpcorb():
    catalog = main_belt_catalog(20000, seed=1, epoch_mjd=60000.0)
    main = (catalog.a > 2.1) & (catalog.a < 3.3)
    assert 0.93 < main.mean() < 0.97
    assert np.all((catalog.e >= 0) & (catalog.e < 1))
    assert 8 < np.median(catalog.inclination) < 10  # Rayleigh(7 deg) median is 8.2
    assert np.median(catalog.h) > 17  # counts rise towards faint H
    gap = (np.abs(catalog.a - 2.502) < 0.01) & (catalog.e < 0.4)
    assert gap.sum() == 0  # the 3:1 Kirkwood gap is empty of main-belt orbits
    numbered = catalog.number >= 0
    assert numbered.mean() == pytest.approx(2 / 3, abs=0.01)
    assert len(set(catalog.packed.tolist())) == len(catalog)  # designations are unique
    parsed = parse_mpcorb(mpcorb_text(catalog.take(np.arange(0, 20000, 97))).encode())
    assert parsed.skipped == 0 and len(parsed) == len(range(0, 20000, 97))


def test_catalog_from_elements_reads_numbers_from_readable_designations():
    elements = {k: np.array([1.0, 2.0]) for k in ("inclination", "node", "arg_perihelion")}
    elements |= {"mean_anomaly": np.zeros(2), "e": np.array([0.1, 0.2]), "a": np.array([2.0, 3.0])}
    catalog = catalog_from_elements(
        elements, epoch_mjd=6e4, packed=["~0001", "K19A00A"], readable=["(620001)", "2019 AA"],
        h=np.array([15.0, 16.0]),
    )  # fmt: skip
    assert catalog.number.tolist() == [620001, -1]
    assert catalog.n[1] == pytest.approx(0.9856076686 / 3.0**1.5, rel=1e-9)
