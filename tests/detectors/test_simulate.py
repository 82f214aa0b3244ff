"""The simulator makes frames a detector can be tested on, with truth that is true."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import sep
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from scipy.special import erf

from detectors.io import write_fits
from detectors.simulate import flux_for_snr, optimal_snr, simulate_field

SMALL = {"shape": (512, 512), "rate_range": (1.0, 60.0)}
QUIET = {  # no artifacts, no stars: for measurements that need clean frames
    "star_density_arcmin2": 0.0,
    "hot_pixel_fraction": 0.0,
    "n_bad_columns": 0,
    "cosmic_rays_per_mpix_min": 0.0,
    "satellite_prob": 0.0,
}


@pytest.fixture(scope="module")
def field():
    return simulate_field(seed=5, **SMALL)


def _object_flux_e(obj, frame_header):
    return frame_header["GAIN"] * 10.0 ** (0.4 * (frame_header["MAGZP"] - obj["mag"]))


def test_same_seed_same_field_and_other_seed_differs(field):
    again = simulate_field(seed=5, **SMALL)
    other = simulate_field(seed=6, **SMALL)
    assert again.truth == field.truth
    for (n1, d1, h1), (n2, d2, h2) in zip(field.frames, again.frames, strict=True):
        assert n1 == n2
        assert np.array_equal(d1, d2)
        assert h1 == h2
    assert not np.array_equal(field.frames[0][1], other.frames[0][1])
    assert other.truth["objects"] != field.truth["objects"]


def test_snr_formula_round_trips():
    flux = flux_for_snr([2.0, 5.0, 12.0], sky_e=1500.0, read_noise_e=5.0, sigma_px=1.3)
    snr = optimal_snr(flux, sky_e=1500.0, read_noise_e=5.0, sigma_px=1.3)
    np.testing.assert_allclose(snr, [2.0, 5.0, 12.0])


def test_headers_carry_wcs_times_and_detector_keys(field, tmp_path):
    truth = field.truth
    assert [f["name"] for f in truth["frames"]] == [name for name, _, _ in field.frames]
    mids = []
    for (name, data, header), info in zip(field.frames, truth["frames"], strict=True):
        assert data.dtype == np.float32
        assert data.shape == tuple(truth["field"]["shape"])
        path = write_fits(tmp_path / name, data, header)
        with fits.open(path) as hdul, warnings.catch_warnings():
            warnings.simplefilter("error")
            read = hdul[0].header
            wcs = WCS(read)
        assert wcs.has_celestial
        assert (read["CTYPE1"], read["CTYPE2"]) == ("RA---TAN", "DEC--TAN")
        assert all(f"CD{i}_{j}" in read for i in (1, 2) for j in (1, 2))
        scale = math.sqrt(abs(np.linalg.det(wcs.wcs.cd))) * 3600.0
        assert scale == pytest.approx(truth["field"]["pixel_scale_arcsec"])
        for key in ("GAIN", "RDNOISE", "SATURATE", "MAGZP", "FILTER", "EXPTIME"):
            assert key in read
        mid = Time(read["DATE-OBS"], scale="utc").mjd + read["EXPTIME"] / 2.0 / 86400.0
        assert mid == pytest.approx(info["mjd_mid"], abs=1e-8)
        mids.append(mid)
    span_h = (mids[-1] - mids[0]) * 24.0
    assert 2.0 <= span_h <= 3.0
    assert truth["field"]["mjd_start"] == mids[0]
    assert truth["field"]["mjd_end"] == mids[-1]


def test_pointings_dither_and_rotate(field):
    wcses = [WCS(h) for _, _, h in field.frames]
    centre = [w.wcs_pix2world(255.5, 255.5, 0) for w in wcses]
    ref = wcses[0]
    shifts = [np.hypot(*np.subtract(ref.wcs_world2pix(*c, 0), 255.5)) for c in centre[1:]]
    assert 0.3 < max(shifts) < 2.0 * math.sqrt(2.0) * 5.0 + 0.5  # +/-5 px dithers
    angles = [math.degrees(math.atan2(w.wcs.cd[0, 1], -w.wcs.cd[0, 0])) for w in wcses]
    assert 0.0 < np.ptp(angles) <= 0.2


def test_truth_positions_follow_each_frame_wcs_and_stay_inside(field):
    height, width = field.truth["field"]["shape"]
    wcs = {name: WCS(header) for name, _, header in field.frames}
    for obj in field.truth["objects"]:
        for obs in obj["observations"]:
            x, y = wcs[obs["frame"]].wcs_world2pix(obs["ra"], obs["dec"], 0)
            assert x == pytest.approx(obs["x"], abs=1e-6)
            assert y == pytest.approx(obs["y"], abs=1e-6)
            assert 20.0 <= obs["x"] <= width - 21 and 20.0 <= obs["y"] <= height - 21


def test_objects_light_is_centred_on_truth_and_has_truth_flux():
    """Noiseless object-only image: centroid at truth x, y (trails too), flux = mag."""
    kw = {**SMALL, **QUIET, "seed": 7, "noise": False, "rate_range": (20.0, 150.0)}
    with_obj = simulate_field(**kw)
    without = simulate_field(**{**kw, "n_objects": 0})
    for k, ((_, img, header), (_, bg, _)) in enumerate(
        zip(with_obj.frames, without.frames, strict=True)
    ):
        diff = (img.astype(float) - bg) * header["GAIN"]
        for obj in with_obj.truth["objects"]:
            obs = obj["observations"][k]
            y0, x0 = round(obs["y"]), round(obs["x"])
            stamp = diff[y0 - 12 : y0 + 13, x0 - 12 : x0 + 13]
            yy, xx = np.mgrid[y0 - 12 : y0 + 13, x0 - 12 : x0 + 13]
            others = [
                o["observations"][k] for o in with_obj.truth["objects"] if o["id"] != obj["id"]
            ]
            if any(abs(o["x"] - x0) < 25 and abs(o["y"] - y0) < 25 for o in others):
                continue  # another object's light in the stamp
            assert stamp.sum() == pytest.approx(_object_flux_e(obj, header), rel=0.01)
            assert (stamp * xx).sum() / stamp.sum() == pytest.approx(obs["x"], abs=0.03)
            assert (stamp * yy).sum() / stamp.sum() == pytest.approx(obs["y"], abs=0.03)


def _pixel_gaussian(centre: float, first: int, n: int, sigma: float) -> np.ndarray:
    edges = np.arange(first, first + n + 1) - 0.5
    return 0.5 * np.diff(erf((edges - centre) / (math.sqrt(2.0) * sigma)))


def test_measured_snr_matches_requested_snr():
    """PSF-weighted flux on (frame - noiseless background) scatters as the truth SNR says."""
    kw = {**SMALL, **QUIET, "seed": 12, "snr_range": (4.0, 10.0), "rate_range": (1.0, 10.0)}
    noisy = simulate_field(**kw, n_objects=40)
    bg = simulate_field(**kw, n_objects=0, noise=False)
    objects = noisy.truth["objects"]
    requested = np.array([o["snr"] for o in objects])
    assert requested.min() >= 3.9 and requested.max() <= 10.1
    z, ratio = [], []
    for k, ((_, img, header), (_, back, _)) in enumerate(zip(noisy.frames, bg.frames, strict=True)):
        diff = (img.astype(float) - back) * header["GAIN"]
        sigma = noisy.truth["frames"][k]["fwhm_px"] / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        x = np.array([o["observations"][k]["x"] for o in objects])
        y = np.array([o["observations"][k]["y"] for o in objects])
        near = np.hypot(x[:, None] - x, y[:, None] - y)
        np.fill_diagonal(near, np.inf)
        for i in np.flatnonzero(near.min(axis=1) > 20.0):  # skip blended objects
            obs = objects[i]["observations"][k]
            y0, x0 = round(obs["y"]) - 8, round(obs["x"]) - 8
            psf = np.outer(
                _pixel_gaussian(obs["y"], y0, 17, sigma), _pixel_gaussian(obs["x"], x0, 17, sigma)
            )
            flux = (psf * diff[y0 : y0 + 17, x0 : x0 + 17]).sum() / (psf**2).sum()
            true_flux = _object_flux_e(objects[i], header)
            z.append((flux - true_flux) / (true_flux / obs["snr"]))
            ratio.append(flux / true_flux)
    assert len(z) > 250
    measured_over_requested = 1.0 / np.std(z)
    assert measured_over_requested == pytest.approx(1.0, abs=0.15)
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.03)


def test_stars_are_fixed_on_the_sky():
    """A bright star's world position maps onto its centroid in every dithered frame."""
    kw = {**QUIET, "star_density_arcmin2": 10.0, "n_objects": 0}
    sim = simulate_field(seed=3, shape=(512, 512), **kw)
    first = sim.frames[0]
    data0 = first[1].astype(np.float32)
    bkg = sep.Background(data0)
    found = sep.extract(data0 - bkg.back(), 20.0, err=bkg.globalrms)
    dist = np.hypot(found["x"][:, None] - found["x"], found["y"][:, None] - found["y"])
    np.fill_diagonal(dist, np.inf)
    good = (
        (found["peak"] < 0.3 * first[2]["SATURATE"])
        & (dist.min(axis=1) > 20.0)
        & (found["x"] > 30)
        & (found["x"] < 480)
        & (found["y"] > 30)
        & (found["y"] < 480)
    )
    stars = found[good][np.argsort(found[good]["flux"])[::-1][:8]]
    assert len(stars) >= 5
    sig = 1.3
    x0, y0, _ = sep.winpos(data0 - bkg.back(), stars["x"], stars["y"], sig)
    ra, dec = WCS(first[2]).wcs_pix2world(x0, y0, 0)
    for _, data, header in sim.frames[1:]:
        sub = data - sep.Background(data).back()
        x_pred, y_pred = WCS(header).wcs_world2pix(ra, dec, 0)
        x, y, _ = sep.winpos(sub, x_pred, y_pred, sig)
        assert np.max(np.hypot(x - x_pred, y - y_pred)) < 0.1
    shifts = [WCS(h).wcs_world2pix(ra[:1], dec[:1], 0) for _, _, h in sim.frames]
    assert np.ptp([s[0][0] for s in shifts]) > 1.0  # the dithers really move stars in pixels


def test_hot_pixels_stay_on_the_same_detector_pixels():
    kw = {**QUIET, "hot_pixel_fraction": 2e-4, "n_objects": 0}
    sim = simulate_field(seed=9, shape=(512, 512), **kw)
    hot_sets = []
    for _, data, _ in sim.frames:
        med = np.median(data)
        noise = 1.4826 * np.median(np.abs(data - med))
        hot_sets.append(set(np.flatnonzero(data > med + 8.0 * noise)))
    assert len(hot_sets[0]) >= 0.6 * 2e-4 * 512 * 512
    assert all(s == hot_sets[0] for s in hot_sets[1:])


def test_default_field_has_saturated_stars_bad_columns_and_cosmic_rays(field):
    saturate = field.frames[0][2]["SATURATE"]
    datas = [d for _, d, _ in field.frames]
    assert all(d.max() <= saturate for d in datas)
    assert any((d == saturate).sum() >= 4 for d in datas)
    column_medians = np.median(datas[0], axis=0)
    outliers = np.abs(column_medians - np.median(column_medians)) > 100.0
    assert outliers.sum() >= 1
    sharp = [np.flatnonzero(d - np.median(d) > 1000.0) for d in datas]
    assert set(sharp[0]) != set(sharp[1])  # cosmic rays differ frame to frame


def test_rejects_impossible_settings():
    with pytest.raises(ValueError, match="shape"):
        simulate_field(seed=0, shape=(64, 64))
    with pytest.raises(ValueError, match="rate_range"):
        simulate_field(seed=0, shape=(256, 256), rate_range=(2000.0, 5000.0))
    with pytest.raises(ValueError, match="overlap"):
        simulate_field(seed=0, cadence_min=1.0, exptime_s=120.0)


def test_real_traits_drift_jump_warm_pixels_rough_wcs_and_heights():
    from detectors.simulate import RealTraits

    traits = RealTraits(
        warm_pixel_fraction=1e-3,
        drift_px_per_hour=30.0,
        blocks=3,
        block_gap_min=30.0,
        jump_px=50.0,
        wcs_error_px=3.0,
        exposure_keyword="EXPOSURE",
        height_loss_rows=5,
    )
    plain = simulate_field(seed=7, n_frames=9, n_objects=2, **SMALL, **QUIET)
    field = simulate_field(seed=7, n_frames=9, n_objects=2, traits=traits, **SMALL, **QUIET)
    headers = [h for _, _, h in field.frames]
    assert all("EXPOSURE" in h and "EXPTIME" not in h for h in headers)
    heights = {d.shape[0] for _, d, _ in field.frames}
    assert len(heights) > 1 and min(heights) >= 512 - 5
    mjd = np.array([f["mjd_mid"] for f in field.truth["frames"]])
    gaps = np.diff(mjd) * 1440
    assert np.sum(gaps > 30) == 2  # three blocks
    # The truth follows the true pointing: an object's pixel track jumps with the blocks.
    x = np.array([o["x"] for o in field.truth["objects"][0]["observations"]])
    steps = np.abs(np.diff(x))
    assert steps[gaps > 30].min() > 5 * np.median(steps[gaps < 30]) or np.ptp(x) > 20
    # The header WCS are about 3 px off the true ones that placed the objects, and
    # their errors average to zero over the sequence.
    errors = np.array(
        [
            np.subtract(
                WCS(header).world_to_pixel_values(obs["ra"], obs["dec"]), (obs["x"], obs["y"])
            )
            for (_, _, header), obs in zip(
                field.frames, field.truth["objects"][0]["observations"], strict=True
            )
        ]
    )
    assert np.sqrt(np.mean(np.sum(errors**2, axis=1))) == pytest.approx(3.0, rel=0.35)
    np.testing.assert_allclose(errors.mean(axis=0), 0.0, atol=0.05)
    # Warm pixels: fixed on the detector, a few sky sigmas above the plain field.
    excess = np.median(
        [
            d[:500] - p[:500]
            for (_, d, _), (_, p, _) in zip(field.frames, plain.frames, strict=True)
        ],
        axis=0,
    )
    warm = excess > 3 * np.sqrt(1500.0 + 25.0) / 1.5 * 0.9
    assert 0.5e-3 < warm.mean() < 2e-3
