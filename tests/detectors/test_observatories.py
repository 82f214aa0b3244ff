"""Observatory codes, and the site keywords of FITS headers (east/west conventions)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from astropy.io import fits

from detectors.observatories import (
    Site,
    SiteWarning,
    match_site,
    observer_site,
    parse_obscodes,
    site_from_header,
)

from ..conftest import shared_path
from .known_helpers import LOWELL, LOWELL_SITE, obscodes_text

LOWELL_XYZ = np.array(Site.from_geodetic(*LOWELL_SITE).itrs_m)


def _header(cards: dict) -> fits.Header:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    return header


def _distance(site: Site) -> float:
    return float(np.linalg.norm(np.array(site.itrs_m) - LOWELL_XYZ))


def test_the_code_list_parses_with_space_telescopes_kept_apart():
    codes = parse_obscodes(obscodes_text())
    assert codes.code.tolist() == ["000", "250", "500", "695", "688"]
    assert np.isnan(codes.rho_cos[1])
    with pytest.raises(KeyError, match="no fixed site"):
        codes.site("250")
    with pytest.raises(KeyError, match="not in the MPC's list"):
        codes.site("Z99")
    site = codes.site("688")
    assert site.code == "688" and "Anderson Mesa" in site.name
    assert _distance(site) < 100.0  # the list's constants are rounded to ~60 m


def test_not_a_code_list_is_an_error():
    with pytest.raises(ValueError, match="no observatory code lines"):
        parse_obscodes("<html>Service unavailable</html>")


def test_the_nearest_code_within_the_tolerance():
    codes = parse_obscodes(obscodes_text())
    code, metres = match_site(codes, Site.from_geodetic(-111.536, 35.097, 2200.0))
    assert code == "688" and metres < 200.0
    assert match_site(codes, Site.from_geodetic(-70.0, -30.0, 2000.0)) is None
    assert match_site(codes, Site.geocentre()) is None


def test_the_real_lowell_header():
    header = fits.getheader(shared_path(*LOWELL, "frames", "20190326.0126.fits"))
    site = site_from_header(header)
    assert site is not None and "LATITUDE/LONGITUD/ALTITUDE" in site.source
    assert _distance(site) < 1.0  # LONGITUD is east longitude, negative for Arizona


@pytest.mark.parametrize(
    "cards",
    [
        {"SITELAT": "+35:05:48.30", "SITELONG": "-111:32:07.8", "SITEELEV": 2206.0},
        {"SITELAT": "35 05 48.3", "SITELONG": "111 32 07.8 W", "SITEELEV": 2206.0},
        {"OBS-LAT": 35.09675, "OBS-LONG": 248.4645, "OBS-ELEV": 2206.0},
        {"LAT-OBS": 35.09675, "LONG-OBS": -111.5355, "ALT-OBS": 2206.0},
        {"OBSGEO-B": 35.09675, "OBSGEO-L": -111.5355, "OBSGEO-H": 2206.0},
        {"OBSGEO-X": LOWELL_XYZ[0], "OBSGEO-Y": LOWELL_XYZ[1], "OBSGEO-Z": LOWELL_XYZ[2]},
    ],
    ids=["sexagesimal", "W-suffix", "0-360", "LAT-OBS", "OBSGEO-BLH", "OBSGEO-XYZ"],
)
def test_site_keyword_styles(cards):
    site = site_from_header(_header(cards))
    assert site is not None and _distance(site) < 20.0, site


def test_a_comment_saying_west_longitude_flips_the_sign():
    header = fits.Header()
    header["OBS-LAT"] = (35.09675, "[deg] Observatory latitude")
    header["OBS-LONG"] = (111.5355, "[deg] Observatory west longitude")
    header["OBS-ELEV"] = (2206.0, "[m] Observatory elevation")
    assert _distance(site_from_header(header)) < 1.0
    header["OBS-LONG"] = (111.5355, "[deg] Observatory east longitude")
    assert _distance(site_from_header(header)) > 1e6  # taken as written: a site in Asia


def test_altitude_in_degrees_is_the_telescope_not_the_site():
    header = fits.Header()
    header["LATITUDE"] = 35.09675
    header["LONGITUD"] = -111.5355
    header["ALTITUDE"] = (62.5, "telescope altitude")
    site = site_from_header(header)
    radius = math.hypot(*site.itrs_m)
    assert radius == pytest.approx(np.linalg.norm(Site.from_geodetic(-111.5355, 35.09675).itrs_m))


def test_no_site_keywords():
    assert site_from_header(_header({"OBJECT": "M31", "LATITUDE": "unknown"})) is None


def test_observer_falls_back_from_header_to_code_to_geocentre():
    codes = parse_obscodes(obscodes_text())
    header = _header({"LATITUDE": 35.09675, "LONGITUD": -111.5355})
    from_header = observer_site(header, codes=codes)
    assert from_header.code == "688"  # named by matching the code list
    assert "header" in from_header.source

    from_code = observer_site(_header({}), code="688", codes=codes)
    assert from_code.source == "MPC code 688" and _distance(from_code) < 100.0

    with pytest.warns(SiteWarning, match="geocentre"):
        geo = observer_site(_header({}))
    assert geo.is_geocentric
    with pytest.warns(SiteWarning, match="without the MPC's code list"):
        assert observer_site(None, code="688").is_geocentric
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert observer_site(None, code="500").is_geocentric  # asked for: no warning
