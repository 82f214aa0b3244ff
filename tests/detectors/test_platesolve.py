"""Plate solving frames without a WCS (astrometry.net's solve-field with Tycho-2 indexes).

The field is made of real Tycho-2 stars, read from the installed index file
itself, so the solver has something true to find: the small space
telescope's 1078 x 712 frames, at 4.5"/px (81' x 53'): the index keeps
only a uniform subset of Tycho-2, about 30 stars per square degree, and
a field needs a dozen or more of them to be solved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from detectors.config import SearchConfig
from detectors.platesolve import available_solvers, plate_solve
from detectors.search import find_moving_objects
from detectors.types import Frame

from ..conftest import need
from .helpers import add_gaussians

INDEX = Path("/usr/share/astrometry/index-tycho2-08.littleendian.fits")
SHAPE = (712, 1078)
SCALE = 4.5  # arcsec per pixel


def _needs_solver() -> None:
    need(
        shutil.which("solve-field") is not None and INDEX.is_file(),
        "astrometry.net's solve-field and its Tycho-2 30'-44' index "
        f"({INDEX}; Debian: astrometry.net astrometry-data-tycho2-08-littleendian)",
    )


def _tycho2(ra: float, dec: float, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RA, Dec, V of the index's Tycho-2 stars within ``radius`` degrees (a box)."""
    with fits.open(INDEX) as hdul:
        names = [h.header.get("TTYPE1") for h in hdul]
        bounds = np.frombuffer(hdul[names.index("kdtree_range_stars")].data.tobytes(), "<f8")
        raw = np.frombuffer(hdul[names.index("kdtree_data_stars")].data.tobytes(), "<u4")
        mag = np.asarray(hdul[names.index("MAG_VT")].data["MAG_VT"], dtype=float)
    xyz = bounds[:3] + raw.reshape(-1, 3) / bounds[6]
    sra = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
    sdec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1, 1)))
    near = (np.abs(sdec - dec) < radius) & (
        np.abs((sra - ra + 180) % 360 - 180) * np.cos(np.radians(dec)) < radius
    )
    return sra[near], sdec[near], mag[near]


def _truth_wcs(ra: float, dec: float, rot_deg: float) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(SHAPE[1] + 1) / 2, (SHAPE[0] + 1) / 2]
    t = np.radians(rot_deg)
    wcs.wcs.cd = SCALE / 3600 * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    return wcs


def _frames(truth: WCS, ra: float, dec: float) -> tuple[list[Frame], list[tuple[float, float]]]:
    """Five drifting frames of the Tycho-2 sky plus faint field stars and one mover."""
    sra, sdec, vmag = _tycho2(ra, dec, 1.2)
    rng = np.random.default_rng(2)
    fx, fy = rng.uniform(0, SHAPE[1], 300), rng.uniform(0, SHAPE[0], 300)
    fra, fdec = truth.pixel_to_world_values(fx, fy)  # fainter stars, not in Tycho-2
    all_ra, all_dec = np.r_[sra, fra], np.r_[sdec, fdec]
    flux = np.r_[2e5 * 10 ** (-0.4 * (vmag - 9.0)), rng.uniform(800, 8000, fx.size)]
    mover = []
    frames = []
    for k in range(5):
        shift = np.array([6.0 * k, -4.0 * k])  # the pointing drifts
        wcs = truth.deepcopy()
        wcs.wcs.crpix = wcs.wcs.crpix + shift
        x, y = wcs.world_to_pixel_values(all_ra, all_dec)
        inside = (x > 6) & (x < SHAPE[1] - 7) & (y > 6) & (y < SHAPE[0] - 7)
        image = rng.normal(300.0, 8.0, SHAPE)
        add_gaussians(image, x[inside], y[inside], flux[inside], 1.0)
        mra, mdec = truth.pixel_to_world_values(400 + 12.0 * k, 300 + 5.0 * k)
        mover.append((float(mra), float(mdec)))
        mx, my = wcs.world_to_pixel_values(mra, mdec)
        add_gaussians(image, mx, my, 6000.0, 1.0)
        header = fits.Header({"GAIN": 1.0})
        frames.append(
            Frame(
                data=image.astype(np.float32),
                wcs=None,
                mjd=60000.0 + k * 0.01,
                exptime=65.0,
                name=f"sat_{k}.fits",
                gain=1.0,
                header=header,
            )
        )
    return frames, mover


def test_star_list_of_real_tycho2_stars_is_solved():
    _needs_solver()
    ra, dec = 150.0, 20.0
    truth = _truth_wcs(ra, dec, 17.0)
    sra, sdec, vmag = _tycho2(ra, dec, 1.2)
    x, y = truth.world_to_pixel_values(sra, sdec)
    keep = (x > 0) & (x < SHAPE[1] - 1) & (y > 0) & (y < SHAPE[0] - 1)
    order = np.argsort(vmag[keep])
    stars = np.c_[x[keep], y[keep]][order]
    assert available_solvers() == ["astrometry.net"]
    solved = plate_solve(stars, SHAPE, scale=SCALE)
    assert solved is not None and solved.solver == "astrometry.net"
    px, py = np.meshgrid([0.0, 539.0, 1077.0], [0.0, 356.0, 711.0])
    a = np.array(solved.wcs.pixel_to_world_values(px.ravel(), py.ravel()))
    b = np.array(truth.pixel_to_world_values(px.ravel(), py.ravel()))
    assert np.max(np.abs(a - b)) * 3600 < 1.5
    assert plate_solve(stars[:3], SHAPE) is None  # too few stars to try


def test_frames_without_wcs_are_plate_solved_and_the_mover_placed_on_the_sky():
    _needs_solver()
    ra, dec = 150.0, 20.0
    truth = _truth_wcs(ra, dec, 17.0)
    frames, mover = _frames(truth, ra, dec)
    for frame in frames:
        frame.header["SECPIX"] = SCALE
    result = find_moving_objects(frames, config=SearchConfig(faint=False, rate_max=600.0))
    assert result.run["astrometry"] == "solved", result.run["astrometry_note"]
    assert "astrometry.net" in result.run["astrometry_note"]
    assert len(result.tracks) == 1
    track = result.tracks[0]
    assert track.astrometry == "solved"
    for k, tra, tdec in zip(track.frames, track.ra, track.dec, strict=True):
        mra, mdec = mover[k]
        off = np.hypot((tra - mra) * np.cos(np.radians(mdec)), tdec - mdec) * 3600
        assert off < 2.0, (k, off)
