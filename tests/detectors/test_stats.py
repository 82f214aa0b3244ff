import numpy as np

from detectors.stats import box_background, mad_std, stack_median


def test_stack_median_matches_nanmedian(xp):
    rng = np.random.default_rng(1)
    stack = rng.normal(size=(7, 20, 30)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.2] = np.nan
    stack[:, 0, 0] = np.nan
    med, count = stack_median(xp.asarray(stack))
    expected = np.nanmedian(np.where(np.isnan(stack).all(0), 0, stack), axis=0)
    expected[0, 0] = np.nan
    np.testing.assert_allclose(
        np.asarray(med.get() if hasattr(med, "get") else med), expected, rtol=1e-6
    )
    assert int(count[0, 0]) == 0
    assert int(count[1, 1]) == int(np.isfinite(stack[:, 1, 1]).sum())


def test_box_background_recovers_gradient_and_noise_despite_stars(xp):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:256, 0:256]
    sky = 100 + 0.2 * xx + 0.1 * yy
    image = sky + rng.normal(0, 5, sky.shape)
    image[rng.random(sky.shape) < 0.01] += 500  # stars and cosmic rays
    image[:40, :40] = np.nan
    bkg, rms = box_background(xp.asarray(image, dtype=np.float32), box=32)
    bkg, rms = (
        np.asarray(bkg.get() if hasattr(bkg, "get") else bkg),
        np.asarray(rms.get() if hasattr(rms, "get") else rms),
    )
    inner = (slice(48, -48), slice(48, -48))
    assert np.max(np.abs(bkg[inner] - sky[inner])) < 1.5
    assert abs(np.median(rms) - 5) < 0.5


def test_mad_std_ignores_outliers_and_nan():
    rng = np.random.default_rng(3)
    v = rng.normal(0, 2, 10000)
    v[:200] = 1e6  # 2% wild outliers shift a MAD by only ~3%
    v[500:600] = np.nan
    assert abs(mad_std(v) - 2) < 0.12
