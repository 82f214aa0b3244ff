"""The fast/detailed split: the work file is small, and the tracks are those of the whole maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors import io
from detectors.config import SearchConfig
from detectors.cutouts import sky_box
from detectors.errors import InputError
from detectors.faint import FaintSettings, kept_maps
from detectors.faint_verify import find_faint
from detectors.fit import FitSettings, fit_tracks
from detectors.fixed import reject_detector_fixed
from detectors.handoff import (
    MARGIN,
    SLACK,
    TILE,
    candidate_paths,
    cut_tiles,
    handed_over,
    tiles_near,
)
from detectors.search import _mover_tracks, detailed_detect, fast_detect, find_moving_objects
from detectors.simulate import simulate_field
from detectors.slow import find_slow_movers
from detectors.tracks import merge_tracks

from .test_faint import _frames

CONFIG = SearchConfig(rate_min=1.0, rate_max=60.0, faint=True)
#: Pixels either side of a path point rounded to a pixel that are within MARGIN of it.
REACH = MARGIN - 1


@pytest.fixture(scope="module")
def field():
    """Bright, faint and slow movers, cosmic rays and a satellite, on 512^2 x 10."""
    return simulate_field(
        seed=6, shape=(512, 512), n_frames=10, n_objects=14, snr_range=(2.5, 8.0),
        rate_range=(1.0, 60.0), satellite_prob=1.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def searched(field):
    frames = _frames(field)
    return frames, fast_detect(frames, config=CONFIG)


def _old_order(fast, config: SearchConfig):
    """The search as one stage did it before the split: every step on the whole maps."""
    per_day = fast.pixels_per_day
    rate_min, rate_max = config.rate_min * per_day, config.rate_max * per_day
    diffs, scale = fast.differences, 24.0 / per_day
    tracks = fit_tracks(
        fast.tracklets, fast.candidates, fast.mjd, diffs, fast.wcs, zero_point=fast.zero_point,
        settings=FitSettings(rate_min=rate_min, rate_max=rate_max,
                             min_stacked_snr=config.min_stacked_snr),
        pixel_scale=scale,
    )  # fmt: skip
    slow = find_slow_movers(diffs, fast.mjd, rate_min=rate_min, rate_max=rate_max)
    _, faint = find_faint(
        diffs, fast.mjd,
        settings=FaintSettings(rate_min=rate_min, rate_max=rate_max,
                               min_stacked_snr=config.faint_min_stacked_snr,
                               memory_bytes=config.memory_gb * 1e9),
    )  # fmt: skip
    for movers, origin in ((slow, "slow"), (faint, "faint")):
        tracks += _mover_tracks(movers, fast, origin=origin)
    tracks, _ = reject_detector_fixed(tracks, fast.registration)
    return merge_tracks(tracks, radius=2 * diffs.fwhm)


def _same_tracks(a, b) -> None:
    assert len(a) == len(b), ([t.origin for t in a], [t.origin for t in b])
    for one, two in zip(a, b, strict=True):
        assert one.origin == two.origin
        np.testing.assert_array_equal(one.frames, two.frames)
        np.testing.assert_allclose(one.x, two.x, rtol=0, atol=1e-9)
        np.testing.assert_allclose(one.y, two.y, rtol=0, atol=1e-9)
        np.testing.assert_allclose(one.flux, two.flux, rtol=1e-9)
        assert one.stacked_snr == pytest.approx(two.stacked_snr, rel=1e-9)


def test_split_through_the_work_file_finds_the_old_tracks_object_for_object(searched, tmp_path):
    frames, fast = searched
    old = _old_order(fast, CONFIG)
    assert {t.origin for t in old} == {"fast", "slow", "faint"}, [t.origin for t in old]
    io.save_fast_result(tmp_path / "fast.npz", fast)
    loaded = io.load_fast_result(tmp_path / "fast.npz")
    _same_tracks(old, detailed_detect(loaded, config=CONFIG))
    result = find_moving_objects(frames, config=CONFIG)
    _same_tracks(old, result.tracks)
    # The detailed detector's stages ran on the CPU, like the fast one's here.
    assert {"slow", "faint_search", "handoff", "fit", "faint_verify"} <= set(result.run["devices"])
    assert set(result.run["devices"].values()) == {"cpu"}


def test_the_work_file_is_smaller_than_the_frames_and_keeps_every_candidate(tmp_path):
    """At 1024^2 a handful of objects cover a small part of the field (at 2048^2, less)."""
    field = simulate_field(
        seed=7, shape=(1024, 1024), n_frames=10, n_objects=5, snr_range=(2.5, 8.0),
        rate_range=(1.0, 60.0),
    )  # fmt: skip
    frames = _frames(field)
    fast = fast_detect(frames, config=CONFIG)
    path = io.save_fast_result(tmp_path / "fast.npz", fast)
    frames_bytes = sum(f.data.astype(np.float32).nbytes for f in frames)
    assert path.stat().st_size <= frames_bytes, (path.stat().st_size, frames_bytes)
    loaded = io.load_fast_result(path)
    assert len(loaded.tracklets) == len(fast.tracklets) > 0
    assert len(loaded.slow) == len(fast.slow)
    for a, b in zip(loaded.slow, fast.slow, strict=True):
        np.testing.assert_array_equal(a.x, b.x)
        assert a.vel == b.vel
    assert fast.faint is not None and loaded.faint is not None
    assert len(loaded.faint) == len(fast.faint) > 0
    np.testing.assert_array_equal(loaded.faint.vx, fast.faint.vx)
    assert loaded.faint.threshold == fast.faint.threshold
    assert loaded.faint.trajectories == fast.faint.trajectories > 0
    assert loaded.devices == fast.devices
    np.testing.assert_array_equal(loaded.differences.template, fast.differences.template)


def test_maps_are_whole_near_every_candidate_and_no_data_elsewhere(searched):
    _, fast = searched
    handed = handed_over(fast)
    whole, cut = fast.differences, handed.differences
    whole_faint = kept_maps(whole, fast.faint_kept)
    assert cut.psi.shape == whole.psi.shape
    for path in candidate_paths(fast):
        for x, y in path:
            xi, yi = round(x), round(y)
            if not (0 <= xi < whole.psi.shape[2] and 0 <= yi < whole.psi.shape[1]):
                continue
            box = np.s_[:, max(yi - REACH, 0) : yi + REACH + 1, max(xi - REACH, 0) : xi + REACH + 1]
            np.testing.assert_array_equal(cut.psi[box], whole.psi[box])
            np.testing.assert_array_equal(cut.diff[box], whole.diff[box])
    for path in candidate_paths(fast, faint_only=True):
        for x, y in path:
            xi, yi = round(x), round(y)
            if not (0 <= xi < whole.psi.shape[2] and 0 <= yi < whole.psi.shape[1]):
                continue
            box = np.s_[:, max(yi - REACH, 0) : yi + REACH + 1, max(xi - REACH, 0) : xi + REACH + 1]
            for cut_map, whole_map in zip(handed.faint_maps, whole_faint, strict=True):
                np.testing.assert_array_equal(cut_map[box], whole_map[box])
    tiles = cut_tiles(fast)
    kept = tiles.index.shape[0] * tiles.size**2 / (whole.psi.shape[1] * whole.psi.shape[2])
    assert 0 < kept < 1
    outside = np.isnan(cut.diff[0]) & np.isfinite(whole.diff[0])
    assert outside.any() and not cut.psi[:, outside].any()


def test_the_tiles_hold_a_diagonal_tracks_whole_review_sky_box():
    """The frames at a fixed sky position fill a square around the path, whose corners lie
    79 px from a 71-px diagonal path, beyond MARGIN: they are kept too, with SLACK around."""
    path = np.c_[np.linspace(200.0, 271.0, 10), np.linspace(300.0, 371.0, 10)]
    x0, y0, side = sky_box(path[:, 0], path[:, 1])
    assert side == 112
    kept = np.zeros((512, 512), dtype=bool)
    for row, col in tiles_near([path], kept.shape, sky_boxes=True):
        kept[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE] = True
    lo_x, lo_y, hi_x, hi_y = x0 - SLACK, y0 - SLACK, x0 + side + SLACK, y0 + side + SLACK
    assert kept[lo_y:hi_y, lo_x:hi_x].all()
    assert kept.mean() < 0.2  # and not much more
    band = tiles_near([path], kept.shape)  # the path's band alone misses the corners
    corner = (y0 // TILE, (x0 + side - 1) // TILE)
    assert corner not in {tuple(rc) for rc in band}


def test_a_work_file_from_before_the_split_is_refused_by_name(tmp_path):
    path = tmp_path / "fast.npz"
    np.savez(path, meta=np.array(json.dumps({"ref": 0})), diff=np.zeros((3, 4, 4)))
    with pytest.raises(InputError, match=r"fast\.npz: a work file written before"):
        io.load_fast_result(path)
