"""The compiled CPU kernels against the NumPy/SciPy code they stand in for.

Each kernel must give the xp path's answer to float32 rounding (the
resampler reads a coarse map bilinearly where the CuPy path reads a dense
one: for the affine maps here the two are the same).
"""

import numpy as np
import pytest
from scipy import ndimage

from detectors import kernels, spline
from detectors.align import resample
from detectors.masks import saturation_mask
from detectors.types import Registration

from .helpers import add_gaussians

RNG = np.random.default_rng(15)


@pytest.mark.parametrize("n", [3, 10, 40])  # ranked (few frames) and sorted (many values)
def test_stack_median_matches_nanmedian(n):
    stack = RNG.normal(size=(n, 37, 53)).astype(np.float32)
    stack[RNG.random(stack.shape) < 0.2] = np.nan
    stack[:, 5, 7] = np.nan  # no data at all
    stack[:, 6, 8] = 2.5  # ties
    med, count = kernels.stack_median(stack)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(stack, axis=0)
    np.testing.assert_allclose(med, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(count, np.isfinite(stack).sum(axis=0))
    assert med.dtype == np.float32 and np.isnan(med[5, 7]) and med[6, 8] == 2.5


@pytest.mark.parametrize("shape", [(3, 37, 53), (10, 700, 800)])  # one band, and threads
def test_stack_mean_is_numpys_nanmean(shape):
    stack = (RNG.normal(size=shape) * 30).astype(np.float32)
    stack[RNG.random(stack.shape) < 0.2] = np.nan
    stack[:, 5, 7] = np.nan  # no data at all
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(stack, axis=0)
    got = kernels.stack_mean(stack)
    assert got.dtype == np.float32 and np.isnan(got[5, 7])
    np.testing.assert_array_equal(got, expected)


def test_stack_median_in_bands_equals_one_band():
    stack = RNG.normal(size=(10, 700, 800)).astype(np.float32)  # above the threads' threshold
    stack[2, :300] = np.nan
    med, count = kernels.stack_median(stack)
    one_med, one_count = np.empty_like(med), np.empty_like(count)
    kernels._median_rows_ranked(stack, one_med, one_count, 0, stack.shape[1])
    np.testing.assert_array_equal(med, one_med)
    np.testing.assert_array_equal(count, one_count)


def _cells_reference(image, box):
    """stats._coarse as written for xp, cell by cell."""
    h, w = image.shape
    half = box // 2
    ny, nx = -(-h // box), -(-w // box)
    med, sig = np.full((ny, nx), np.nan), np.full((ny, nx), np.nan)
    for cy in range(ny):
        for cx in range(nx):
            v = image[cy * box : cy * box + box : 2, cx * box : cx * box + box : 2].ravel()
            v = v[np.isfinite(v)]
            if v.size == 0:
                continue
            m = np.median(v)
            s = 1.4826 * np.median(np.abs(v - m))
            v = v[np.abs(v - m) <= 3 * s]
            if v.size < 0.3 * half * half:
                continue
            med[cy, cx] = np.median(v)
            sig[cy, cx] = 1.4826 * np.median(np.abs(v - med[cy, cx]))
    return med, sig


@pytest.mark.parametrize("k", [1, 2, 3, 4, 9, 1023, 1024])
def test_radix_median_is_numpys_median(k):
    rng = np.random.default_rng(k)
    keys = np.empty(k, dtype=np.uint32)
    for scale in (1e-3, 1.0, 1e4):
        values = (rng.normal(size=k) * scale).astype(np.float32)
        for v in (values, np.round(values), np.abs(values)):  # signs, ties, all positive
            v = v.astype(np.float32)
            assert kernels._median(v, keys) == np.median(v)


@pytest.mark.parametrize("box", [np.s_[:, :], np.s_[::2, ::2], np.s_[:7, 15:29]])
def test_median_deviation_is_numpys_on_the_finite_values(box):
    image = RNG.normal(size=(300, 270)).astype(np.float32)
    image[:, :20] = np.nan
    image[4, 5], image[6, 7] = np.inf, -np.inf
    v = image[box][np.isfinite(image[box])]
    expected = np.median(np.abs(v - np.median(v)))
    got = kernels.median_deviation(image[box])
    assert got == expected and got.dtype == np.float32
    assert np.isnan(kernels.median_deviation(np.full((3, 4), np.nan, dtype=np.float32)))


def test_cell_statistics_match_the_clipped_median_cell_by_cell():
    image = (RNG.normal(size=(300, 270)) * 3 + 100).astype(np.float32)
    image = add_gaussians(image, np.array([40.0, 200.0]), np.array([50.0, 150.0]), [5e4] * 2, 1.5)
    image = image.astype(np.float32)
    image[100:180, 0:120] = np.nan  # cells with little or no data
    med, sig = kernels.cell_statistics(image, 64)
    ref_med, ref_sig = _cells_reference(image, 64)
    np.testing.assert_allclose(med, ref_med, rtol=1e-5)
    np.testing.assert_allclose(sig, ref_sig, rtol=1e-4)
    assert np.isnan(med).sum() == np.isnan(ref_med).sum() > 0


@pytest.mark.parametrize("mode", ["constant", "nearest"])
@pytest.mark.parametrize("sigma", [0.7, 1.6, 3.3])
def test_gaussian_filter_matches_scipy(mode, sigma):
    image = RNG.normal(size=(90, 130)).astype(np.float32)
    image[40:45, 60:70] += 50.0
    got = kernels.gaussian_filter(image, sigma, mode=mode, truncate=3.5)
    expected = ndimage.gaussian_filter(image, sigma, mode=mode, truncate=3.5)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_gaussian_filter_refuses_other_modes():
    with pytest.raises(ValueError, match="mode must be"):
        kernels.gaussian_filter(np.zeros((5, 5)), 1.0, mode="reflect")


def test_inverse_variance_weights_match_the_formula_and_drop_no_data():
    d = RNG.normal(size=(40, 50)).astype(np.float32)
    d[3, 4] = np.nan
    rms = np.full_like(d, 2.0)
    star_var = RNG.random(d.shape).astype(np.float32)
    poisson = RNG.random(d.shape).astype(np.float32)
    weighted, inv = kernels.inverse_variance(d, rms, star_var, poisson, scale=1.3)
    var = rms**2 + star_var + poisson / np.float32(1.3)
    ok = np.isfinite(d)
    np.testing.assert_allclose(inv[ok], 1 / var[ok], rtol=1e-6)
    np.testing.assert_allclose(weighted[ok], d[ok] / var[ok], rtol=1e-5)
    assert inv[3, 4] == 0 and weighted[3, 4] == 0
    _, no_poisson = kernels.inverse_variance(d, rms, star_var, None, scale=1.3)
    np.testing.assert_allclose(no_poisson[ok], 1 / (rms**2 + star_var)[ok], rtol=1e-6)


def test_bilinear_matches_two_gathers_and_blends():
    coarse = RNG.normal(size=(4, 5)).astype(np.float32)
    lo_y, f_y = np.array([0, 0, 1, 2, 2]), np.array([0.0, 0.4, 0.5, 0.9, 1.0], np.float32)
    lo_x, f_x = np.array([0, 1, 3, 3]), np.array([0.2, 0.0, 0.7, 1.0], np.float32)
    got = kernels.bilinear(coarse, (lo_y, lo_y + 1, f_y), (lo_x, lo_x + 1, f_x))
    rows = coarse[:, lo_x] * (1 - f_x) + coarse[:, lo_x + 1] * f_x
    expected = rows[lo_y] * (1 - f_y)[:, None] + rows[lo_y + 1] * f_y[:, None]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("shape", [(1, 9), (7, 1), (12, 30), (300, 257)])
def test_spline_coefficients_match_scipys_prefilter(shape):
    image = RNG.normal(size=shape).astype(np.float32)
    expected = ndimage.spline_filter(image.astype(np.float64), order=3, mode="mirror")
    got = spline.spline_coefficients(image)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())


def _affine_registration(shape, *, shift, angle_deg, step=16):
    """A Registration mapping reference pixels to a frame shifted and rotated about the centre."""
    gy = np.unique(np.r_[np.arange(0, shape[0], step), shape[0] - 1]).astype(float)
    gx = np.unique(np.r_[np.arange(0, shape[1], step), shape[1] - 1]).astype(float)
    cy, cx = np.meshgrid(gy, gx, indexing="ij")
    return Registration.one_frame((gy, gx), _rotate(cy, cx, shape, shift, angle_deg))


def _rotate(y, x, shape, shift, angle_deg):
    a = np.deg2rad(angle_deg)
    c0y, c0x = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    ry = c0y + np.cos(a) * (y - c0y) + np.sin(a) * (x - c0x) + shift[0]
    rx = c0x - np.sin(a) * (y - c0y) + np.cos(a) * (x - c0x) + shift[1]
    return ry, rx


def _spline(image, shape, shift, angle_deg):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    coords = np.stack(_rotate(yy, xx, shape, shift, angle_deg))
    return ndimage.map_coordinates(image, coords, order=3, mode="constant", cval=np.nan)


def test_resampler_is_scipys_cubic_spline_on_a_random_image(xp):
    shape = (120, 150)
    image = RNG.normal(size=shape).astype(np.float32)
    registration = _affine_registration(shape, shift=(3.37, -2.81), angle_deg=0.4)
    bad = np.zeros(shape, dtype=bool)
    out, out_bad = resample(xp.asarray(image), xp.asarray(bad), registration, 0, shape, xp)
    out, out_bad = (
        np.asarray(getattr(out, "get", lambda: out)()),
        np.asarray(getattr(out_bad, "get", lambda: out_bad)()),
    )
    expected = _spline(image, shape, (3.37, -2.81), 0.4)
    ok = np.isfinite(expected)
    assert not out_bad[ok].any()
    # The same cubic spline, its coefficients in float32 instead of float64.
    assert np.abs(out - expected)[ok].max() < 1e-5 * np.abs(image).max()
    # Output pixels that fall outside the frame are no data.
    assert out_bad[np.isnan(expected)].all() and np.isnan(out[np.isnan(expected)]).all()


def test_resampled_stars_keep_flux_and_position(xp):
    shape = (128, 128)
    x, y = np.array([30.2, 64.7, 100.4]), np.array([40.6, 70.1, 95.3])
    image = add_gaussians(np.zeros(shape), x, y, [1e4] * 3, 1.2).astype(np.float32)
    shift, angle = (2.63, -1.18), 0.3
    registration = _affine_registration(shape, shift=shift, angle_deg=angle)
    bad = np.zeros(shape, dtype=bool)
    out, _ = resample(xp.asarray(image), xp.asarray(bad), registration, 0, shape, xp)
    out = np.asarray(getattr(out, "get", lambda: out)())
    expected = _spline(image, shape, shift, angle)
    for sy, sx in zip(*_reference_positions(x, y, shape, shift, angle), strict=True):
        win = (slice(round(sy) - 6, round(sy) + 7), slice(round(sx) - 6, round(sx) + 7))
        yy, xx = np.mgrid[win]
        for stamp in (out[win], expected[win]):
            assert abs(stamp.sum() / 1e4 - 1) < 1e-3
            assert abs((stamp * yy).sum() / stamp.sum() - sy) < 1e-3
            assert abs((stamp * xx).sum() / stamp.sum() - sx) < 1e-3
        assert np.abs(out[win] - expected[win]).max() < 1e-5 * expected[win].max()


def _reference_positions(x, y, shape, shift, angle_deg):
    """Where frame pixels (y, x) land on the reference grid: the inverse of ``_rotate``."""
    a = np.deg2rad(angle_deg)
    c0y, c0x = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    dy, dx = y - shift[0] - c0y, x - shift[1] - c0x
    return c0y + np.cos(a) * dy - np.sin(a) * dx, c0x + np.sin(a) * dy + np.cos(a) * dx


def test_resampler_carries_the_mask_without_ringing(xp):
    shape = (64, 64)
    image = np.full(shape, 10.0, dtype=np.float32)
    image[20, 30] = 1e6  # a hot pixel, masked
    bad = np.zeros(shape, dtype=bool)
    bad[20, 30] = True
    registration = _affine_registration(shape, shift=(0.5, 0.25), angle_deg=0.0, step=8)
    out, out_bad = resample(xp.asarray(image), xp.asarray(bad), registration, 0, shape, xp)
    out = np.asarray(getattr(out, "get", lambda: out)())
    out_bad = np.asarray(getattr(out_bad, "get", lambda: out_bad)())
    # The output pixels the hot pixel weighs on bilinearly are bad (NaN) ...
    assert out_bad[19:21, 29:31].all() and np.isnan(out[19:21, 29:31]).all()
    # ... and its neighbours see the fill (the sky), not a ringing 1e6.
    good = ~out_bad & np.isfinite(out)
    np.testing.assert_allclose(out[good][:500], 10.0, rtol=1e-4)
    # Besides those four, only the last row and column (beyond the frame's edge).
    assert out_bad.sum() == 4 + 64 + 63 and out_bad[-1].all() and out_bad[:, -1].all()


@pytest.mark.parametrize("n_saturated", [3, 3000])  # sparse marking and the filter
def test_saturation_growth_equals_the_maximum_filter(xp, n_saturated):
    image = RNG.normal(size=(200, 180)).astype(np.float32)
    image[3, 4] = np.nan
    flat = RNG.choice(image.size, n_saturated, replace=False)
    image.ravel()[flat] = 6e4
    image[0, 0] = image[199, 179] = 6e4  # corners: the box is clipped
    got = saturation_mask(xp.asarray(image), 5e4, xp, grow=4)
    expected = ndimage.maximum_filter((image >= 5e4).astype(np.uint8), size=9) > 0
    np.testing.assert_array_equal(np.asarray(getattr(got, "get", lambda: got)()), expected)


def test_freed_image_memory_is_kept_and_no_huge_pages_advised():
    from detectors.backend import keep_freed_memory

    assert keep_freed_memory()  # glibc here: mallopt took every setting
    assert np._core.multiarray._get_madvise_hugepage() is False


def test_paste_tiles_puts_every_tile_back_where_the_cut_took_it() -> None:
    from detectors.handoff import _cut

    rng = np.random.default_rng(7)
    maps = rng.normal(size=(3, 64, 80)).astype(np.float32)
    index = np.array([[0, 0], [1, 3], [3, 4], [2, 1]])
    tiles = _cut(maps, index, 16, np.nan)
    full = np.full((3, 64, 80), np.nan, dtype=np.float32)
    kernels.paste_tiles(full, tiles, index, 16)
    for row, col in index:
        box = np.s_[:, row * 16 : row * 16 + 16, col * 16 : col * 16 + 16]
        np.testing.assert_array_equal(full[box], maps[box])
    untouched = np.isnan(full)
    assert untouched.sum() == full.size - 4 * 3 * 16 * 16
