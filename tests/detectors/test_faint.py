"""Faint search: synthetic tracking finds what single frames cannot, and nothing else."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtri

from detectors.config import SearchConfig
from detectors.faint import FaintSettings, motion_grid, shift_table, tail_threshold
from detectors.faint_verify import find_faint
from detectors.report import tracks_to_contract
from detectors.score import score_field
from detectors.search import detailed_detect, fast_detect, run_info
from detectors.simulate import simulate_field
from detectors.stack import STACKERS, best_motions
from detectors.types import Frame

RATES = (10.0, 40.0)


def _frames(field) -> list[Frame]:
    from astropy.wcs import WCS

    from detectors.headers import mid_exposure_mjd

    frames = []
    for name, data, header in field.frames:
        frames.append(
            Frame(
                data=data.astype(np.float32),
                wcs=WCS(header).celestial,
                mjd=mid_exposure_mjd([header], name=name, exptime=header["EXPTIME"]),
                exptime=header["EXPTIME"],
                name=name,
                gain=header["GAIN"],
                read_noise=header["RDNOISE"],
                saturation=header["SATURATE"],
                zero_point=header["MAGZP"],
            )
        )
    return frames


def _search(field, *, faint: bool):
    frames = _frames(field)
    config = SearchConfig(rate_min=RATES[0] / 2, rate_max=RATES[1] * 1.2, faint=faint)
    fast = fast_detect(frames, config=config)
    tracks = detailed_detect(fast, config=config)
    contract = tracks_to_contract(tracks, frames=frames, run=run_info(fast, frames, config))
    return score_field(contract, field.truth), tracks, fast


@pytest.fixture(scope="module")
def snr3_field():
    return simulate_field(
        seed=21, shape=(384, 384), n_frames=10, n_objects=4, snr_range=(3.0, 3.2), rate_range=RATES,
        cosmic_rays_per_mpix_min=10.0, satellite_prob=0.0,
    )  # fmt: skip


def test_snr3_objects_are_found_by_the_faint_search_only(snr3_field):
    per_frame, _, _ = _search(snr3_field, faint=False)
    stacked, tracks, fast = _search(snr3_field, faint=True)
    assert sum(o.recovered for o in per_frame.objects) <= 1
    assert sum(o.recovered for o in stacked.objects) >= 3, [(o.id, o.snr) for o in stacked.objects]
    assert stacked.false_tracks == 0 and stacked.duplicates == 0
    assert any(t.origin == "faint" for t in tracks)
    assert fast.faint is not None and fast.faint.trajectories > 0


def test_empty_field_with_cosmic_rays_and_a_streak_gives_no_tracks():
    field = simulate_field(
        seed=22, shape=(384, 384), n_frames=10, n_objects=0, rate_range=RATES,
        cosmic_rays_per_mpix_min=40.0, satellite_prob=1.0,
    )  # fmt: skip
    _, tracks, _ = _search(field, faint=True)
    assert tracks == [], [(t.origin, t.stacked_snr, t.rate_arcsec_per_hour) for t in tracks]


def test_motion_grid_covers_the_range_within_the_loss():
    t = np.linspace(-0.05, 0.05, 10)
    sigma = 1.3
    grid = motion_grid(t, rate_min=20.0, rate_max=600.0, sigma=sigma, max_loss=0.05)
    rng = np.random.default_rng(1)
    speeds = rng.uniform(20.0, 600.0, 500)
    angles = rng.uniform(0, 2 * np.pi, 500)
    for v in np.c_[speeds * np.sin(angles), speeds * np.cos(angles)]:
        nearest = grid[np.argmin(np.hypot(*(grid - v).T))]
        miss = np.hypot(*np.outer(t, nearest - v).T)
        loss = 1 - np.mean(np.exp(-(miss**2) / (4 * sigma**2)))
        assert loss <= 0.06


def test_stackers_agree_and_find_the_best_motion():
    rng = np.random.default_rng(2)
    snr = rng.standard_normal((6, 64, 80)).astype(np.float32)
    t = np.linspace(-0.03, 0.03, 6)
    shifts = shift_table(motion_grid(t, rate_min=0.0, rate_max=300.0, sigma=1.0), t)
    # Plant a mover along motion 7 starting at (30, 40).
    for k, (dy, dx) in enumerate(shifts[7]):
        snr[k, 30 + dy, 40 + dx] += 6.0
    found = {name: stack(snr, shifts) for name, stack in STACKERS.items()}
    results = {name: best for name, (best, _) in found.items()}
    noise = {name: values for name, (_, values) in found.items()}
    for values in noise.values():
        np.testing.assert_allclose(values, noise["xp"], rtol=1e-4)
    # Pure noise: every motion's sums scatter by about sqrt(N).
    assert np.median(noise["xp"]) == pytest.approx(math.sqrt(6), rel=0.1)
    scale = 1.0 / noise["xp"]
    for best in results.values():
        np.testing.assert_allclose(best, results["xp"], atol=1e-4)
    assert best_motions(snr, shifts, scale, np.array([30]), np.array([40]))[0] == 7
    assert results["xp"][30, 40] == pytest.approx(float(np.max(results["xp"])))


def test_tail_threshold_follows_the_noise():
    rng = np.random.default_rng(3)
    # Peaks of a noise map whose scale is 1.2 (not the nominal 1), plus a few objects.
    peaks = np.r_[1.2 * rng.standard_normal(2_000_000), rng.uniform(8, 12, 15)]
    level = tail_threshold(peaks, 0.5)
    # A N(0, 1.2) exceeds this about 0.5 times in 2e6 draws.
    assert level == pytest.approx(-1.2 * ndtri(0.5 / 2e6), abs=0.15)


def test_xp_and_numba_stackers_find_the_same_faint_movers(snr3_field):
    """The array-module path (what CuPy runs) and the compiled CPU path agree."""
    if "numba" not in STACKERS:
        pytest.skip("numba is not installed")
    _, _, fast = _search(snr3_field, faint=False)
    per_day = fast.pixels_per_day
    settings = FaintSettings(rate_min=RATES[0] / 2 * per_day, rate_max=RATES[1] * 1.2 * per_day)
    found = {
        name: find_faint(fast.differences, fast.mjd, settings=settings, stacker=name)
        for name in ("xp", "numba")
    }
    (xp_seeds, xp_movers), (numba_seeds, numba_movers) = found["xp"], found["numba"]
    assert xp_seeds.threshold == pytest.approx(numba_seeds.threshold, abs=1e-3)
    assert len(xp_movers) == len(numba_movers) >= 3
    for a, b in zip(xp_movers, numba_movers, strict=True):
        np.testing.assert_allclose(a.x, b.x, atol=1e-3)
        np.testing.assert_allclose(a.y, b.y, atol=1e-3)
        assert a.stacked == pytest.approx(b.stacked, rel=1e-4)


def test_a_streak_across_a_faint_movers_path_neither_hides_it_nor_adds_tracks(snr3_field):
    """A satellite crossing an SNR-3 object in one frame: masked there, the rest still stacks."""
    from astropy.wcs import WCS

    frames = [(name, data.copy(), header) for name, data, header in snr3_field.frames]
    target = snr3_field.truth["objects"][0]["observations"][5]
    _, data, header = frames[5]
    x0, y0 = WCS(header).celestial.world_to_pixel_values(target["ra"], target["dec"])
    yy, xx = np.mgrid[: data.shape[0], : data.shape[1]]
    distance = np.abs((yy - y0) * np.cos(0.5) - (xx - x0) * np.sin(0.5))  # a line at 29 deg
    sky_sigma = float(np.std(data[:50, :50]))
    data += (20 * sky_sigma * np.exp(-0.5 * (distance / 1.3) ** 2)).astype(data.dtype)
    streaked = type(snr3_field)(frames=frames, truth=snr3_field.truth)
    score, tracks, _ = _search(streaked, faint=True)
    assert score.false_tracks == 0, [(t.origin, t.stacked_snr) for t in tracks]
    assert sum(o.recovered for o in score.objects) >= 3
    assert score.objects[0].recovered
