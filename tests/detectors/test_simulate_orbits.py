"""Simulated fields whose movers follow real orbits: known vs new, end to end through the engine."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import io
from detectors.config import SearchConfig
from detectors.ephemeris import ephemerides, observer_states
from detectors.identify import ObservedTrack, identify_tracks
from detectors.observatories import Site, site_from_header
from detectors.orbits import parse_mpcorb
from detectors.predict import Footprint, predict_catalog
from detectors.search import find_moving_objects
from detectors.simulate_orbits import simulate_orbit_field


@pytest.fixture(scope="module")
def orbit_field():
    return simulate_orbit_field(
        seed=7, n_objects=6, catalogued_fraction=0.5, shape=(384, 384), n_frames=8,
        snr_range=(12.0, 20.0), satellite_prob=0.0,
    )  # fmt: skip


def test_movers_are_drawn_where_their_orbits_say(orbit_field):
    truth = orbit_field.field.truth
    site = Site.from_geodetic(-111.5355, 35.09675, 2206.0)
    mjd = np.array([f["mjd_mid"] for f in truth["frames"]])
    eph = ephemerides(orbit_field.orbits, observer_states(site, mjd))
    for i, obj in enumerate(truth["objects"]):
        ra = np.array([o["ra"] for o in obj["observations"]])
        dec = np.array([o["dec"] for o in obj["observations"]])
        off = np.hypot((ra - eph.ra[i]) * np.cos(np.radians(dec)), dec - eph.dec[i]) * 3600
        assert off.max() < 1e-6
    header = orbit_field.field.frames[0][2]
    assert header["MPCCODE"] == "688" and site_from_header(header) is not None


def test_the_mpcorb_text_holds_exactly_the_catalogued_movers(orbit_field):
    catalog = parse_mpcorb(orbit_field.mpcorb.encode())
    names = {catalog.designation(i) for i in range(len(catalog))}
    truth = orbit_field.field.truth["objects"]
    assert names == {o["designation"] for o in truth if o["catalogued"]}
    assert sum(o["catalogued"] for o in truth) == 3
    assert any(n.startswith("(") for n in names) and any(not n.startswith("(") for n in names)
    assert catalog.skipped == 0


def test_catalogued_movers_found_are_named_and_new_ones_are_not(orbit_field, tmp_path):
    frames_dir, _ = io.write_simulated_field(orbit_field.field, tmp_path)
    frames = io.load_frames(io.expand_paths([frames_dir])).frames
    found = find_moving_objects(frames, config=SearchConfig(faint=False))
    truth = orbit_field.field.truth["objects"]
    assert len(found.tracks) >= 4
    tracks = [
        ObservedTrack(
            id=f"AH{k:05d}",
            mjd=t.mjd,
            ra=t.ra,
            dec=t.dec,
            err_arcsec=float(np.median(t.ra_err_arcsec)),
        )
        for k, t in enumerate(found.tracks)
    ]
    middle = frames[len(frames) // 2]
    footprint = Footprint(middle.wcs, middle.shape)
    site = site_from_header(middle.header)
    frame_mjd = np.array([f.mjd for f in frames])
    catalog = parse_mpcorb(orbit_field.mpcorb.encode())
    predictions = predict_catalog(catalog, frame_mjd, site=site, footprint=footprint)
    result = identify_tracks(tracks, predictions, footprint=footprint, frame_mjd=frame_mjd)

    def truth_of(track):
        """The simulated mover a found track follows (within 2")."""
        k = len(track.mjd) // 2
        for obj in truth:
            obs = min(obj["observations"], key=lambda o: abs(o["mjd"] - track.mjd[k]))
            d = np.hypot(
                (obs["ra"] - track.ra[k]) * np.cos(np.radians(obs["dec"])),
                obs["dec"] - track.dec[k],
            )
            if d * 3600 < 2.0:
                return obj
        return None

    named = new = 0
    for track, ident in zip(tracks, result.tracks, strict=True):
        obj = truth_of(track)
        assert obj is not None, "a false track on a clean simulated field"
        if obj["catalogued"]:
            assert ident.known is not None and ident.known.designation == obj["designation"]
            named += 1
        else:
            assert ident.known is None
            new += 1
    assert named >= 2 and new >= 2
    assert {f.known.designation for f in result.known_in_field} == {
        o["designation"] for o in truth if o["catalogued"]
    }
