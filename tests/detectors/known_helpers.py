"""Shared inputs of the known-object tests: the Lowell (5945) data and small code lists."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation

from detectors.identify import ObservedTrack

LOWELL = ("data", "real", "lowell42-5945-roachapproach")
#: The Lowell header's site: east longitude, latitude, height (m).
LOWELL_SITE = (-111.5355, 35.09675, 2206.0)


def truth_rows(folder: Path, *, shipped_only: bool = True) -> list[dict[str, str]]:
    with open(folder / "truth_5945_positions.csv") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    return [r for r in rows if r["shipped"] == "True" or not shipped_only]


def measured_track(folder: Path, track_id: str = "AH00001") -> ObservedTrack:
    """(5945) as measured in the 17 shipped frames (truth file), as a track."""
    rows = truth_rows(folder)
    return ObservedTrack(
        id=track_id,
        mjd=np.array([float(r["mid_jd_utc"]) - 2400000.5 for r in rows]),
        ra=np.array([float(r["meas_ra"]) for r in rows]),
        dec=np.array([float(r["meas_dec"]) for r in rows]),
        err_arcsec=0.05,
    )


def obscodes_text(extra: str = "") -> str:
    """A small ObsCodes.html: Greenwich, the geocentre, HST (no site), and 688 from the header site.

    The 688 line is computed from the Lowell header's site (the real list's
    constants are rounded the same way), so the test does not depend on a
    downloaded list.
    """
    lon, lat, height = LOWELL_SITE
    x, y, z = EarthLocation.from_geodetic(lon * u.deg, lat * u.deg, height * u.m).to_value(u.m)
    radius = 6378137.0
    lowell = (
        f"688 {np.degrees(np.arctan2(y, x)) % 360:8.4f} {np.hypot(x, y) / radius:7.5f}"
        f"{z / radius:+9.5f} Lowell Observatory, Anderson Mesa Station"
    )
    return (
        "<html><body><pre>\n"
        "Code  Long.   cos      sin    Name\n"
        "000   0.0000 0.62411 +0.77873 Greenwich\n"
        "250                           Hubble Space Telescope\n"
        "500   0.0000 0.00000 +0.00000 Geocentric\n"
        "695 248.4065 0.84560 +0.53265 Kitt Peak\n"
        f"{lowell}\n{extra}</pre></body></html>\n"
    )
