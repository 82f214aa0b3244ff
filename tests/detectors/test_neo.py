"""digest2 NEO scores: a main-belt arc scores low, a fast close arc high."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from detectors.ephemeris import ephemerides, observer_states
from detectors.identify import ObservedTrack
from detectors.neo import digest2_scores
from detectors.observatories import Site
from detectors.orbits import load_catalog

from ..conftest import shared_path
from .known_helpers import LOWELL, LOWELL_SITE, measured_track, obscodes_text


@pytest.fixture
def obscodes(tmp_path):
    path = tmp_path / "ObsCodes.html"
    path.write_text(obscodes_text())
    return path


def _arc(catalog, mjd):
    eph = ephemerides(catalog, observer_states(Site.from_geodetic(*LOWELL_SITE), mjd))
    return ObservedTrack(id="T", mjd=mjd, ra=eph.ra[0], dec=eph.dec[0], err_arcsec=0.2)


def test_a_main_belt_arc_near_opposition_scores_low(obscodes):
    """(5945) on 2019-01-28, 1.56 AU away, 41"/h: a 2-hour arc, no magnitude, as a survey sees it."""
    catalog = load_catalog(shared_path(*LOWELL, "mpcorb_5945.dat"))
    track = _arc(catalog, 58512.2 + np.arange(5) * 0.02)
    (score,) = digest2_scores([track], obscodes=obscodes, observatory_code="688")
    assert score.neo < 10  # measured 4
    assert score.scores["MB1"] > 80  # measured 95: inner main belt, as (5945) is (a = 2.23 AU)


def test_the_lowell_arc_is_below_the_neocp_threshold(obscodes):
    """The real 5.5-h arc at 9.3"/h and phase 21 deg is more ambiguous, but stays under 65."""
    track = measured_track(shared_path(*LOWELL))
    with_mag = replace(track, mag=np.full(17, 17.8), band="V")
    without, with_v = digest2_scores([track, with_mag], obscodes=obscodes, observatory_code="688")
    assert without.neo < 65 and with_v.neo < 65  # measured 54 and 28
    assert without.raw_neo < 10  # over the whole population (known objects included): 3.5


def test_a_fast_close_arc_scores_as_an_neo(obscodes):
    mjd = 58568.2 + np.arange(4) * 0.01
    track = ObservedTrack(
        id="F",
        mjd=mjd,
        ra=124.6 + np.arange(4) * 0.02,
        dec=25.3 + np.arange(4) * 0.01,
        err_arcsec=0.3,
    )
    (score,) = digest2_scores([track], obscodes=obscodes, observatory_code="688")
    assert score.neo >= 65  # 1.4 deg/day: the MPC would post it to the NEOCP


def test_short_arcs_get_no_score_and_the_code_list_is_required(obscodes, tmp_path):
    one = ObservedTrack(id="1", mjd=np.array([58568.2]), ra=np.array([124.6]), dec=np.array([25.3]))
    assert digest2_scores([one], obscodes=obscodes, observatory_code="688") == [None]
    with pytest.raises(FileNotFoundError, match="orbits update"):
        digest2_scores([one], obscodes=tmp_path / "missing.html", observatory_code="688")
