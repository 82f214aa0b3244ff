"""`identify_known`: --known auto|mpcorb|skybot|none, the observer, and the code for reports."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from app.config import Settings
from app.known import identify_known
from detectors.errors import InputError
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
    return folder, header, footprint, measured_track(folder)


def _settings(tmp_path, *, codes: bool = True, **extra) -> Settings:
    settings = Settings(
        DATA_DIR=tmp_path / "data",
        ASTROHUNTER_SKYBOT_URL=f"http://127.0.0.1:{closed_port()}/skybot",
        ASTROHUNTER_SKYBOT_TIMEOUT=5,
        **extra,
    )
    if codes:
        settings.catalog_dir.mkdir(parents=True)
        (settings.catalog_dir / "ObsCodes.html").write_text(obscodes_text())
    return settings


def _run(lowell, settings, **kwargs):
    _, header, footprint, track = lowell
    return identify_known(
        [track],
        footprint=footprint,
        frame_mjd=track.mjd,
        header=header,
        settings=settings,
        **kwargs,
    )


def test_auto_with_a_catalogue_names_the_track_and_finds_the_code(tmp_path, lowell):
    settings = _settings(tmp_path, ASTROHUNTER_ORBITS=lowell[0] / "mpcorb_5945.dat")
    outcome = _run(lowell, settings)
    assert outcome.result.source == "mpcorb"
    assert outcome.result.tracks[0].known.designation == "(5945) Roachapproach"
    assert outcome.observatory_code == "688"  # the header's site, matched to the code list
    assert "LATITUDE" in outcome.site.source and outcome.notes == []
    assert 0 < outcome.seconds < 15


def test_the_code_given_wins_and_the_header_site_still_observes(tmp_path, lowell):
    settings = _settings(tmp_path, ASTROHUNTER_ORBITS=lowell[0] / "mpcorb_5945.dat")
    outcome = _run(lowell, settings, observatory_code="695")
    assert outcome.observatory_code == "695" and "header" in outcome.site.source


def test_none_and_a_missing_catalogue(tmp_path, lowell):
    settings = _settings(tmp_path)
    off = _run(lowell, settings, mode="none")
    assert off.result.tracks[0].reason == "identification off (--known none)"
    with pytest.raises(InputError, match="orbits update"):
        _run(lowell, settings, mode="mpcorb")


def test_auto_without_catalogue_or_network_finishes_with_the_reason(tmp_path, lowell):
    outcome = _run(lowell, _settings(tmp_path))
    assert outcome.result.source == "skybot"
    (ident,) = outcome.result.tracks
    assert ident.known is None and ident.reason.startswith("SkyBoT unavailable")


def test_skybot_mode(tmp_path, lowell):
    fake = FakeSkybot(load_catalog(lowell[0] / "mpcorb_5945.dat"), parse_obscodes(obscodes_text()))
    server = Archive(routes={"/skybot": fake}).start()
    try:
        settings = _settings(tmp_path).model_copy(update={"skybot_url": f"{server.url}/skybot"})
        outcome = _run(lowell, settings, mode="skybot")
    finally:
        server.stop()
    assert outcome.result.tracks[0].known.designation == "(5945) Roachapproach"
    assert fake.queries[0]["-observer"] == "688"


def test_no_site_anywhere_is_said_not_silent(tmp_path, lowell):
    _, _, footprint, track = lowell
    settings = _settings(tmp_path, codes=False, ASTROHUNTER_ORBITS=lowell[0] / "mpcorb_5945.dat")
    outcome = identify_known(
        [track], footprint=footprint, frame_mjd=track.mjd, header=fits.Header(), settings=settings
    )
    assert outcome.observatory_code is None
    assert outcome.site.is_geocentric and any("geocentre" in n for n in outcome.notes)
    # From the geocentre the prediction is 1.8-3.9" off instead of 0.26": matched loosely or not at all.
    ident = outcome.result.tracks[0]
    assert ident.known is None or ident.offset_arcsec > 1.0
    assert np.isfinite(outcome.seconds)
