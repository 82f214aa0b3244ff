"""Tracks matched to catalogued orbits: tolerance, motion, one-to-one, decoys, a huge catalogue."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from detectors.identify import identify_tracks, match_tracks
from detectors.observatories import site_from_header
from detectors.orbit_sim import catalog_with_decoys, clone_orbit, concatenate
from detectors.orbits import load_catalog
from detectors.predict import (
    Footprint,
    KnownObject,
    orbit_uncertainty_arcsec,
    predict_catalog,
    predict_linear,
)

from ..conftest import shared_path
from .known_helpers import LOWELL, measured_track

pytestmark = pytest.mark.realdata

#: Signed distances (pixels at mid-sequence) of the decoy clones from (5945).
CLONE_PX = np.array([15.0, -15.0, 25.0, -40.0, 60.0, -80.0, 100.0, -130.0, 160.0, -200.0])


@pytest.fixture(scope="module")
def lowell():
    folder = shared_path(*LOWELL)
    header = fits.getheader(folder / "frames" / "20190326.0158.fits")  # the middle frame
    footprint = Footprint(WCS(header), (header["NAXIS2"], header["NAXIS1"]))
    track = measured_track(folder)
    return folder, header, footprint, site_from_header(header), track


def _identify(catalog, lowell, tracks=None):
    _, _, footprint, site, track = lowell
    tracks = tracks or [track]
    times = np.concatenate([t.mjd for t in tracks])
    predictions = predict_catalog(catalog, times, site=site, footprint=footprint)
    return identify_tracks(tracks, predictions, footprint=footprint, frame_mjd=track.mjd)


def test_the_measured_track_is_5945(lowell):
    folder = lowell[0]
    result = _identify(load_catalog(folder / "mpcorb_5945.dat"), lowell)
    (ident,) = result.tracks
    assert ident.known.designation == "(5945) Roachapproach"
    assert (ident.known.number, ident.known.name, ident.known.packed) == (
        5945,
        "Roachapproach",
        "05945",
    )
    assert ident.offset_arcsec < 0.35 and ident.max_offset_arcsec < 0.45
    assert ident.rate_difference_arcsec_per_hour < 0.2
    assert ident.predicted_v == pytest.approx(17.8, abs=0.1)
    (seen,) = result.known_in_field
    assert seen.track_id == ident.track_id
    assert (seen.x, seen.y) == pytest.approx((257.3, 256.9), abs=1.0)  # truth at 0158


def test_clones_beside_it_never_label_it_and_are_listed_as_missed(lowell):
    folder, _, footprint, site, track = lowell
    real = load_catalog(folder / "mpcorb_5945.dat")
    catalog, names = catalog_with_decoys(
        real,
        n_background=2000,
        clone_offsets_px=CLONE_PX,
        footprint=footprint,
        site=site,
        mjd=float(np.mean(track.mjd[[0, -1]])),
    )
    result = _identify(catalog, lowell)
    assert result.tracks[0].known.designation == "(5945) Roachapproach"
    by_name = {f.known.designation: f for f in result.known_in_field}
    real_xy = np.array([by_name["(5945) Roachapproach"].x, by_name["(5945) Roachapproach"].y])
    distances = sorted(
        np.hypot(by_name[n].x - real_xy[0], by_name[n].y - real_xy[1]) for n in names
    )
    assert distances == pytest.approx(sorted(np.abs(CLONE_PX)), abs=0.5)
    assert all(by_name[n].track_id is None for n in names)


def test_a_clone_alone_is_not_the_track(lowell):
    """The nearest decoy (15 px = 16.6") is outside every tolerance: no match at all."""
    folder, _, footprint, site, track = lowell
    real = load_catalog(folder / "mpcorb_5945.dat")
    decoys, _ = catalog_with_decoys(
        real, n_background=0, clone_offsets_px=[15.0, -15.0], footprint=footprint, site=site,
        mjd=float(np.mean(track.mjd[[0, -1]])),
    )  # fmt: skip
    result = _identify(decoys.take(np.array([1, 2])), lowell)
    assert result.tracks[0].known is None
    assert result.tracks[0].reason == "no catalogued object predicted within tolerance"
    assert len(result.known_in_field) == 2


def test_one_orbit_labels_one_track_the_closest(lowell):
    folder = lowell[0]
    track = lowell[4]
    near = replace(track, id="NEAR", dec=track.dec + 0.2 / 3600)
    far = replace(track, id="FAR", dec=track.dec + 1.0 / 3600)
    result = _identify(load_catalog(folder / "mpcorb_5945.dat"), lowell, tracks=[far, near])
    labels = {i.track_id: i.known for i in result.tracks}
    assert labels["NEAR"] is not None and labels["FAR"] is None
    assert result.known_in_field[0].track_id == "NEAR"


def test_right_place_wrong_motion_is_not_a_match(lowell):
    folder, track = lowell[0], lowell[4]
    mid = np.argsort(track.mjd)[len(track.mjd) // 2]
    backwards = replace(
        track,
        id="BACK",
        ra=2 * track.ra[mid] - track.ra,
        dec=2 * track.dec[mid] - track.dec,
    )
    result = _identify(load_catalog(folder / "mpcorb_5945.dat"), lowell, tracks=[backwards])
    assert result.tracks[0].known is None


def test_an_empty_field_leaves_every_track_new(lowell):
    """A catalogue with nothing near the field: no candidates, every track new with the reason."""
    folder, track = lowell[0], lowell[4]
    elsewhere = clone_orbit(load_catalog(folder / "mpcorb_5945.dat"), 0, np.array([90.0, 180.0]))
    result = _identify(elsewhere, lowell)
    assert result.candidates == 0 and result.known_in_field == []
    assert result.tracks[0].known is None
    assert result.tracks[0].reason == "no catalogued object predicted near the field"
    assert _identify(concatenate(elsewhere), lowell, tracks=[track]).tracks[0].known is None


def test_tolerances_follow_the_uncertainty_and_stay_capped(lowell):
    folder, track = lowell[0], lowell[4]
    catalog = load_catalog(folder / "mpcorb_5945.dat")
    sloppy = replace(catalog, uncertainty=np.array([9], dtype=np.int8))
    offset = replace(track, dec=track.dec + 6.0 / 3600)  # 6" off, in a straight line
    tight = _identify(catalog, lowell, tracks=[offset]).tracks[0]
    loose = _identify(sloppy, lowell, tracks=[offset]).tracks[0]
    assert tight.known is None  # U=0: tolerance 3"
    assert loose.known is not None and loose.tolerance_arcsec == 10.0  # U=9: the 10" cap
    u = orbit_uncertainty_arcsec(np.array([0, 2, 5, -1]), np.array([58574.0] * 4), 58568.2)
    assert u[0] < 0.2 and u[1] < 3.0 and u[2] > 100.0 and u[3] == u.max()


def test_linear_predictions_from_one_epoch(lowell):
    """SkyBoT-style input: position and rates at mid-sequence carry to every frame."""
    folder, _, footprint, site, track = lowell
    exact = predict_catalog(
        load_catalog(folder / "mpcorb_5945.dat"), track.mjd, site=site, footprint=footprint
    )
    k = len(exact.mjd) // 2
    linear = predict_linear(
        [KnownObject("(5945) Roachapproach", number=5945, source="skybot")],
        epoch_mjd=float(exact.mjd[k]),
        ra=exact.ra[:, k],
        dec=exact.dec[:, k],
        ra_rate=exact.ra_rate[:, k],
        dec_rate=exact.dec_rate[:, k],
        v_mag=exact.v_mag[:, k],
        delta_au=[1.95],
        position_error_arcsec=[0.05],
        mjd=track.mjd,
    )
    cols = exact.columns(track.mjd)
    diff = (
        np.hypot(
            (linear.ra[0] - exact.ra[0, cols]) * np.cos(np.radians(track.dec)),
            linear.dec[0] - exact.dec[0, cols],
        )
        * 3600
    )
    # A straight line misses the diurnal parallax's curvature (0.8" after 2.75 h at 1.95 AU);
    # its bound, 0.5 (2 pi/24 h)^2 dt^2 R_earth/Delta = 1.2", is in the uncertainty.
    assert 0.3 < diff.max() < 1.2
    assert linear.sigma_arcsec[0] > diff.max()
    (ident,) = match_tracks([track], linear)
    assert ident.known.source == "skybot"
