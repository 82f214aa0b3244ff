"""SkyBoT through astroquery: its real VOTable from a local server, topocentric, and unreachable."""

from __future__ import annotations

import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from app.skybot import SkybotQuery, SkybotUnavailable, identify_with_skybot, skybot_cone
from detectors.ephemeris import ephemerides, observer_states
from detectors.observatories import parse_obscodes
from detectors.orbits import load_catalog
from detectors.predict import Footprint

from ..conftest import shared_path
from ..detectors.known_helpers import LOWELL, measured_track, obscodes_text
from ..sources.archive import Archive
from ..sources.conftest import closed_port
from .skybot_fake import FakeSkybot

pytestmark = pytest.mark.realdata


@pytest.fixture
def lowell():
    folder = shared_path(*LOWELL)
    header = fits.getheader(folder / "frames" / "20190326.0158.fits")
    footprint = Footprint(WCS(header), (header["NAXIS2"], header["NAXIS1"]))
    return load_catalog(folder / "mpcorb_5945.dat"), footprint, measured_track(folder)


@pytest.fixture
def skybot(lowell):
    codes = parse_obscodes(obscodes_text())
    fake = FakeSkybot(lowell[0], codes)
    server = Archive(routes={"/skybot": fake}).start()
    yield server, fake, codes
    server.stop()


def test_a_track_is_named_from_skybots_answer(lowell, skybot):
    _, footprint, track = lowell
    server, fake, _ = skybot
    result = identify_with_skybot(
        [track], footprint=footprint, frame_mjd=track.mjd, observatory_code="688",
        url=f"{server.url}/skybot", timeout_s=10,
    )  # fmt: skip
    (ident,) = result.tracks
    assert ident.known.designation == "(5945) Roachapproach"
    assert ident.known.source == "skybot" and ident.known.number == 5945
    assert ident.known.packed == "05945" and ident.known.name == "Roachapproach"
    assert ident.offset_arcsec < 0.8 and result.source == "skybot"
    assert [f.track_id for f in result.known_in_field] == [track.id]
    (query,) = fake.queries
    assert query["-observer"] == "688" and "-loc" not in query  # astroquery #3515
    assert query["-mime"] == "votable"
    assert float(query["-ep"]) == pytest.approx(np.mean(track.mjd[[0, -1]]) + 2400000.5)


def test_topocentric_not_silently_geocentric(lowell, skybot, monkeypatch):
    """Ours sends -observer and gets the site's positions; astroquery's -loc gets the geocentre's."""
    catalog, footprint, track = lowell
    server, _, codes = skybot
    mid = float(np.mean(track.mjd[[0, -1]]))
    topo = ephemerides(catalog, observer_states(codes.site("688"), np.array([mid])))
    cra, cdec, radius = footprint.centre_radius()
    ours = skybot_cone(
        cra, cdec, radius, mid, observatory_code="688", url=f"{server.url}/skybot", timeout_s=10
    )

    def off(ra, dec):
        return float(
            np.hypot((ra - topo.ra[0, 0]) * np.cos(np.radians(dec)), dec - topo.dec[0, 0]) * 3600
        )

    assert off(ours.ra[0], ours.dec[0]) < 0.01

    from astroquery.imcce import Skybot, SkybotClass

    original = SkybotClass._request

    def to_fake(self, method, url, **kwargs):  # the stock client, pointed at the fake server
        return original(self, method, f"{server.url}/skybot", **kwargs)

    monkeypatch.setattr(SkybotClass, "_request", to_fake)
    stock = Skybot.cone_search(
        (cra, cdec), radius, Time(mid, format="mjd"), location="688", cache=False
    )
    assert off(float(stock["RA"][0].value), float(stock["DEC"][0].value)) > 1.0  # 1.8" at 05:15 UT


def test_unreachable_skybot_leaves_tracks_unidentified_with_the_reason(lowell):
    _, footprint, track = lowell
    result = identify_with_skybot(
        [track], footprint=footprint, frame_mjd=track.mjd, observatory_code="688",
        url=f"http://127.0.0.1:{closed_port()}/skybot", timeout_s=5,
    )  # fmt: skip
    (ident,) = result.tracks
    assert ident.known is None and ident.reason.startswith("SkyBoT unavailable:")
    assert "unreachable" in ident.reason and result.known_in_field == []


def test_a_slow_skybot_times_out():
    def slow(path, query):
        time.sleep(3.0)
        return 200, "text/xml", b""

    server = Archive(routes={"/skybot": slow}).start()
    try:
        t0 = time.perf_counter()
        with pytest.raises(SkybotUnavailable, match=r"did not answer within 0\.5 s"):
            skybot_cone(
                124.63,
                25.34,
                0.1,
                58568.2,
                observatory_code="688",
                url=f"{server.url}/skybot",
                timeout_s=0.5,
            )
        assert time.perf_counter() - t0 < 2.5
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (200, b"<html>Service temporarily down</html>", "not its VOTable"),
        (503, b"busy", "unreachable"),
    ],
)
def test_an_answer_that_is_not_skybots(status, body, match):
    server = Archive(routes={"/skybot": lambda p, q: (status, "text/html", body)}).start()
    try:
        with pytest.raises(SkybotUnavailable, match=match):
            skybot_cone(
                124.63,
                25.34,
                0.1,
                58568.2,
                observatory_code="688",
                url=f"{server.url}/skybot",
                timeout_s=5,
            )
    finally:
        server.stop()


def test_nothing_in_the_cone(lowell, skybot):
    server, _, _ = skybot
    answer = skybot_cone(
        10.0, -40.0, 0.05, 58568.2, observatory_code="688", url=f"{server.url}/skybot", timeout_s=10
    )
    assert answer.objects == [] and answer.ra.size == 0


def test_the_query_payload_names_the_observer():
    payload = SkybotQuery("http://unused", 1.0).cone_search(
        (10.0, 20.0), 0.1, 2458568.7, location="G96", get_query_payload=True
    )
    assert payload["-observer"] == "G96" and "-loc" not in payload
