import numpy as np
import pytest

from detectors.fit import _psf_fit, motion_fit
from detectors.link import default_min_detections, link_candidates
from detectors.types import Candidates


def _cands(rows):
    rows = np.array(rows, dtype=float)
    return Candidates(
        frame=rows[:, 0].astype(np.int64),
        y=rows[:, 2],
        x=rows[:, 1],
        flux=np.ones(len(rows)),
        snr=rows[:, 3],
    )


def test_links_a_line_through_noise_and_drops_a_stationary_source():
    rng = np.random.default_rng(0)
    mjd = 60000 + np.arange(8) * 0.01
    rows = []
    for k in range(8):
        if k != 3:  # the mover is missed in one frame
            rows.append(
                (
                    k,
                    100 + 200 * (mjd[k] - mjd[0]) + rng.normal(0, 0.2),
                    50 + 100 * (mjd[k] - mjd[0]),
                    6,
                )
            )
        rows.append((k, 300.0, 300.0, 8))  # a variable star: same place every frame
        for _ in range(20):
            rows.append((k, *rng.uniform(0, 500, 2), 4.2))
    cands = _cands(rows)
    # The star never moves more than rate_min allows: no pair of its detections is proposed.
    tracklets = link_candidates(cands, mjd, rate_min=100, rate_max=2000, radius=1.5)
    assert len(tracklets) == 1
    members = tracklets[0]
    assert sorted(cands.frame[members].tolist()) == [0, 1, 2, 4, 5, 6, 7]
    np.testing.assert_allclose(cands.y[members], 50 + 100 * (mjd[cands.frame[members]] - mjd[0]))


def test_no_candidates_gives_no_tracklets():
    assert link_candidates(Candidates.empty(), np.arange(5.0), rate_min=1, rate_max=10) == []


def test_min_detections_default():
    assert default_min_detections(3) == 3
    assert default_min_detections(10) == 4
    assert default_min_detections(17) == 7


def test_motion_fit_rejects_an_outlier():
    t = np.linspace(-0.05, 0.05, 9)
    x, y = 10 + 300 * t, 20 - 50 * t
    x[4] += 5
    px, py, inlier = motion_fit(t, x, y)
    np.testing.assert_allclose(px, [10, 300], atol=1e-6)
    np.testing.assert_allclose(py, [20, -50], atol=1e-6)
    assert inlier.tolist() == [True] * 4 + [False] + [True] * 4


@pytest.mark.parametrize("missing_row", [None, 2])
def test_psf_fit_finds_a_gaussians_position_and_flux(missing_row):
    """The compiled Gauss-Newton fit: a noiseless Gaussian off the centre pixel, started a
    pixel away (and with a row of no data), comes back to its position and flux."""
    r, sigma, x0, y0, flux = 5, 1.6, 0.37, -0.81, 1234.0
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    g = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    stamp = (flux * g).astype(np.float32)
    if missing_row is not None:
        stamp[missing_row] = np.nan
    x, y, f = _psf_fit(stamp, x0 + 0.9, y0 - 0.7, sigma)
    assert abs(x - x0) < 1e-3 and abs(y - y0) < 1e-3 and abs(f / flux - 1) < 1e-4


def test_psf_fit_refuses_a_negative_or_mostly_empty_stamp():
    stamp = np.full((9, 9), -5.0, dtype=np.float32)
    assert _psf_fit(stamp, 0.0, 0.0, 1.5) is None  # no positive flux
    stamp = np.ones((9, 9), dtype=np.float32)
    stamp[:3] = np.nan  # a third without data
    assert _psf_fit(stamp, 0.0, 0.0, 1.5) is None
