import numpy as np

from detectors.masks import defect_mask, saturation_mask

from .helpers import add_gaussians


def test_hot_pixels_and_bad_column_found_but_not_stars():
    rng = np.random.default_rng(4)
    stack = rng.normal(0, 3, (6, 200, 200)).astype(np.float32)
    for k in range(6):  # dithered stars: sharp but not single-pixel
        add_gaussians(stack[k], 100 + k, 50 + k, 3e4, 1.0)
    stack[:, 30, 40] += 400  # hot pixel in every frame
    stack[:, 64:, 120] += 20  # column bad from row 64 upward
    mask = defect_mask(stack)
    assert mask[30, 40]
    assert mask[150, 120] and not mask[10, 120]
    assert not mask[50:56, 100:106].any()
    assert mask.mean() < 0.03


def test_saturated_star_masked_with_margin():
    img = np.zeros((50, 50), dtype=np.float32)
    img[20:23, 20:23] = 70000
    m = saturation_mask(img, 65000, np, grow=4)
    assert m[16, 16] and m[26, 26] and not m[10, 10]
    assert not saturation_mask(img, None, np).any()
