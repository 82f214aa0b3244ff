"""The compiled windowed centroid and aperture sum against sep 1.4.1 itself (same bits)."""

from __future__ import annotations

import numpy as np
import pytest
import sep

from detectors import aperture

from .helpers import add_gaussians


def _sources_image(shape=(160, 200), n=60, sigma=1.5):
    """Noise, Gaussian stars (some over the edges) and starting points off by up to a pixel."""
    rng = np.random.default_rng(21)
    image = rng.normal(0.0, 10.0, size=shape)
    x, y = rng.uniform(-2, shape[1] + 1, n), rng.uniform(-2, shape[0] + 1, n)
    image = add_gaussians(image, x, y, rng.uniform(300, 3e4, n), sigma).astype(np.float32)
    return image, x + rng.uniform(-1, 1, n), y + rng.uniform(-1, 1, n)


@pytest.mark.parametrize("sig", [0.3, 1.45, 2.6])  # below sep's smallest sigma, and above
def test_winpos_is_seps_windowed_centroid(sig):
    image, x0, y0 = _sources_image()
    x, y, flag = aperture.winpos(image, x0, y0, np.full(x0.size, sig))
    sx, sy, sflag = sep.winpos(image, x0, y0, np.full(x0.size, sig))
    np.testing.assert_allclose(x, sx, rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, sy, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(flag, sflag)
    assert (flag == aperture.APER_TRUNC).any() and (flag == 0).any()


@pytest.mark.parametrize("r", [1.2, 5.0])
def test_sum_circle_is_seps_aperture_sum(r):
    image, x, y = _sources_image()
    mask = np.zeros(image.shape, dtype=bool)
    mask[:, 50] = True  # a bad column
    inside = (x > 5) & (x < image.shape[1] - 5) & (y > 5) & (y < image.shape[0] - 5)
    mask[y[inside][:3].astype(int), x[inside][:3].astype(int)] = True  # saturated stars
    got = aperture.sum_circle(image, x, y, r, err=np.float32(9.3), mask=mask)
    expected = sep.sum_circle(image, x, y, r, err=np.float32(9.3), mask=mask)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, equal_nan=True)
    flags = set(np.unique(got[2]))
    assert {0, aperture.APER_TRUNC, aperture.APER_HASMASKED} <= flags
    image[mask] = np.nan  # no data under the mask: never read
    again = aperture.sum_circle(image, x, y, r, err=np.float32(9.3), mask=mask)
    for a, b in zip(again, got, strict=True):
        np.testing.assert_array_equal(a, b)
