"""The engine on real telescope data: (5945) Roachapproach in Lowell 42-inch frames.

See ../shared/data/real/lowell42-5945-roachapproach/PROVENANCE.md: raw
uint16 cutouts, date-only DATE-OBS with the time in UTCSTART, SCAMP TAN+PV
WCS, a 5.5 h sequence of 17 frames, the asteroid moving ~9.3"/h at PA ~155.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from detectors import io
from detectors.config import SearchConfig
from detectors.search import find_moving_objects

from ..conftest import shared_path

pytestmark = pytest.mark.realdata

LOWELL = ("data", "real", "lowell42-5945-roachapproach")


def _truth(folder):
    with open(folder / "truth_5945_positions.csv") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    return {r["file"]: r for r in rows}


@pytest.fixture(scope="module")
def lowell_result():
    folder = shared_path(*LOWELL)
    frames = io.load_frames(
        io.expand_paths([folder / "frames"]),
        bias=folder / "calib" / "master_bias.fits",
        flat=folder / "calib" / "master_flat.fits",
    ).frames
    return find_moving_objects(frames, config=SearchConfig(faint=False)), _truth(folder)


def test_finds_roachapproach_and_nothing_else(lowell_result):
    result, _ = lowell_result
    assert len(result.tracks) == 1, [t.rate_arcsec_per_hour for t in result.tracks]
    track = result.tracks[0]
    assert track.frames.size >= 15
    assert track.rate_arcsec_per_hour == pytest.approx(9.3, abs=0.3)
    assert track.position_angle_deg == pytest.approx(155, abs=3)


def test_astrometry_matches_the_independent_truth(lowell_result):
    result, truth = lowell_result
    track = result.tracks[0]
    offsets = []
    for k, ra, dec, mjd in zip(track.frames, track.ra, track.dec, track.mjd, strict=True):
        row = truth[result.frames[k].name]
        assert mjd == pytest.approx(float(row["mid_jd_utc"]) - 2400000.5, abs=1e-6)
        offsets.append(
            (
                (ra - float(row["meas_ra"])) * np.cos(np.radians(dec)) * 3600,
                (dec - float(row["meas_dec"])) * 3600,
            )
        )
    rms = float(np.sqrt(np.mean(np.sum(np.square(offsets), axis=1))))
    assert rms < 0.15, f"astrometric RMS {rms:.3f} arcsec against the measured truth"


def test_raw_frames_without_calibration_still_work():
    folder = shared_path(*LOWELL)
    frames = io.load_frames(io.expand_paths([folder / "frames"])).frames
    result = find_moving_objects(frames, config=SearchConfig(faint=False))
    assert len(result.tracks) == 1
    assert result.tracks[0].rate_arcsec_per_hour == pytest.approx(9.3, abs=0.3)


@pytest.mark.parametrize("calibrated", [False, True], ids=["raw", "calibrated"])
def test_faint_search_adds_no_false_tracks_on_real_frames(calibrated):
    """Shift-and-stack over 2-20 "/h on the real sequence finds Roachapproach and nothing else."""
    folder = shared_path(*LOWELL)
    calibration = (
        {
            "bias": folder / "calib" / "master_bias.fits",
            "flat": folder / "calib" / "master_flat.fits",
        }
        if calibrated
        else {}
    )
    frames = io.load_frames(io.expand_paths([folder / "frames"]), **calibration).frames
    result = find_moving_objects(frames, config=SearchConfig(rate_min=2.0, rate_max=20.0))
    assert result.run["trajectories_tested"] > 0
    assert len(result.tracks) == 1
    assert result.tracks[0].rate_arcsec_per_hour == pytest.approx(9.3, abs=0.3)


def _sky_offsets_arcsec(track, other) -> np.ndarray:
    common, ia, ib = np.intersect1d(track.frames, other.frames, return_indices=True)
    assert common.size >= 10
    cos = np.cos(np.radians(track.dec[ia]))
    return np.hypot((track.ra[ia] - other.ra[ib]) * cos, track.dec[ia] - other.dec[ib]) * 3600


def test_only_the_first_frame_has_a_wcs(lowell_result):
    """Every frame but the first registered on the stars alone; its WCS places them all."""
    result, _ = lowell_result
    folder = shared_path(*LOWELL)
    frames = io.load_frames(
        io.expand_paths([folder / "frames"]),
        bias=folder / "calib" / "master_bias.fits",
        flat=folder / "calib" / "master_flat.fits",
    ).frames
    for frame in frames[1:]:
        frame.wcs = None
    bare = find_moving_objects(frames, config=SearchConfig(faint=False))
    assert len(bare.tracks) == 1
    methods = [r["method"] for r in bare.run["registration"]]
    assert methods.count("reference") == 1 and methods.count("stars") == 16
    assert bare.run["astrometry"] == "wcs"
    assert bare.tracks[0].rate_arcsec_per_hour == pytest.approx(9.3, abs=0.3)
    assert np.max(_sky_offsets_arcsec(bare.tracks[0], result.tracks[0])) < 1.0


def test_shifted_wcs_and_warm_pixels_still_give_roachapproach_alone(lowell_result):
    """Each WCS 3-6 px off (a rough attitude), 2 warm pixels per 1000 at 5-30 sigma."""
    result, _ = lowell_result
    folder = shared_path(*LOWELL)
    frames = io.load_frames(
        io.expand_paths([folder / "frames"]),
        bias=folder / "calib" / "master_bias.fits",
        flat=folder / "calib" / "master_flat.fits",
    ).frames
    rng = np.random.default_rng(11)
    shape = frames[0].shape
    warm = rng.choice(shape[0] * shape[1], size=int(2e-3 * shape[0] * shape[1]), replace=False)
    level = np.exp(rng.uniform(np.log(5), np.log(30), warm.size))
    for frame in frames:
        noise = 1.4826 * np.nanmedian(np.abs(frame.data - np.nanmedian(frame.data)))
        frame.data.ravel()[warm] += level * noise
        angle, size = rng.uniform(0, 2 * np.pi), rng.uniform(3, 6)
        frame.wcs.wcs.crpix += [size * np.cos(angle), size * np.sin(angle)]
    rough = find_moving_objects(frames, config=SearchConfig(faint=False))
    assert len(rough.tracks) == 1, [t.rate_arcsec_per_hour for t in rough.tracks]
    assert rough.tracks[0].rate_arcsec_per_hour == pytest.approx(9.3, abs=0.3)
    assert max(r["rms_px"] or 0 for r in rough.run["registration"]) < 0.2
    # the median of 17 rough WCS: off by about a pixel (1.1"), not by 3-6
    assert np.median(_sky_offsets_arcsec(rough.tracks[0], result.tracks[0])) < 2.5


@pytest.mark.parametrize(
    "first_as_template", [True, False], ids=["first-8-for-last-9", "last-8-for-first-9"]
)
def test_half_the_night_as_template_for_the_other_half_gives_roachapproach_alone(
    first_as_template,
):
    """Issue 15: frames 1-8 as the template of frames 9-17, and frames 10-17 for 1-9.

    The faint search runs too: the ghost ring of the bright star at the
    bottom moves between the halves of the night, and must not become a track.
    """
    folder = shared_path(*LOWELL)
    frames = list(
        io.load_frames(
            io.expand_paths([folder / "frames"]),
            bias=folder / "calib" / "master_bias.fits",
            flat=folder / "calib" / "master_flat.fits",
        ).frames
    )
    template, searched = (frames[:8], frames[8:]) if first_as_template else (frames[9:], frames[:9])
    result = find_moving_objects(searched, config=SearchConfig(), template=template)
    assert result.run["template"]["files"] == [f.name for f in template]
    assert len(result.tracks) == 1, [
        (t.rate_arcsec_per_hour, t.position_angle_deg, t.frames.size) for t in result.tracks
    ]
    track = result.tracks[0]
    assert track.frames.size == 9
    assert track.rate_arcsec_per_hour == pytest.approx(9.3, abs=0.4)
    assert track.position_angle_deg == pytest.approx(155, abs=3)
