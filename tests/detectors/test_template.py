"""Templates from another night (issue 15): placement, artefacts, refusals, slow movers."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from detectors.align import align_frames, reference_index
from detectors.backend import to_numpy
from detectors.config import SearchConfig
from detectors.detect import find_candidates
from detectors.difference import difference_frames
from detectors.errors import InputError
from detectors.masks import frame_masks
from detectors.register import register_frames, star_catalogue
from detectors.search import find_moving_objects
from detectors.simulate import TemplateNight, simulate_field
from detectors.template import (
    cosmic_ray_mask,
    exclusion_sets,
    exclusion_templates,
    reference_template,
    separable_gap,
)
from detectors.types import Frame

#: The night before, pointed 6 px off, turned 0.25 degrees, in sharper seeing.
NIGHT = TemplateNight(frames=10, offset_px=(6.0, -4.0), rotation_deg=0.25, fwhm_range_px=(2.0, 2.5))


def _frames(images) -> list[Frame]:
    frames = []
    for name, data, header in images:
        frames.append(
            Frame(
                data=data.astype(np.float32),
                wcs=WCS(header),
                mjd=float(header["MJD-OBS"]) + header["EXPTIME"] / 2 / 86400,
                exptime=float(header["EXPTIME"]),
                name=name,
                gain=float(header["GAIN"]),
                saturation=float(header["SATURATE"]),
                zero_point=float(header["MAGZP"]),
                header=header,
            )
        )
    return frames


@pytest.fixture(scope="module")
def slow_field():
    """512^2 x 10 frames of 15 slow movers (1-4"/h, SNR 3-8) and the night before."""
    field = simulate_field(
        seed=3,
        shape=(512, 512),
        n_objects=15,
        snr_range=(3.0, 8.0),
        rate_range=(1.0, 4.0),
        template=NIGHT,
    )
    return field, _frames(field.frames), _frames(field.template)


def _found(field, result) -> tuple[set[str], int]:
    """Ids of the true objects the tracks follow, and the tracks that follow none."""
    names = [f.name for f in result.frames]
    found, false = set(), 0
    for track in result.tracks:
        hits = set()
        for obj in field.truth["objects"]:
            where = {o["frame"]: (o["x"], o["y"]) for o in obj["observations"]}
            dist = [
                np.hypot(
                    track.frame_x[j] - where[names[k]][0], track.frame_y[j] - where[names[k]][1]
                )
                for j, k in enumerate(track.frames)
            ]
            if np.median(dist) < 3.0:
                hits.add(obj["id"])
        found |= hits
        false += not hits
    return found, false


@pytest.fixture(scope="module")
def searched(slow_field):
    _, frames, template = slow_field
    config = SearchConfig(faint=False)
    without = find_moving_objects(frames, config=config)
    with_template = find_moving_objects(frames, config=config, template=template)
    return without, with_template


def test_slow_movers_are_found_with_a_template_and_not_without(slow_field, searched):
    field, _, _ = slow_field
    without, with_template = searched
    found_without, _ = _found(field, without)
    found_with, false_with = _found(field, with_template)
    rate = {o["id"]: o["rate_arcsec_per_hour"] for o in field.truth["objects"]}
    gained = {i for i in found_with - found_without if rate[i] <= 3.0}
    assert len(gained) >= 2, (sorted(found_without), sorted(found_with))
    assert len(found_with) >= len(found_without) + 5
    assert false_with <= 1


def test_run_block_names_the_template_and_its_depth(searched):
    without, with_template = searched
    assert without.run["template"] == {"kind": "same-night median", "files": [], "frames": 10}
    info = with_template.run["template"]
    assert info["kind"] == "reference"
    assert info["files"] == [f"tpl_{k:03d}.fits" for k in range(10)]
    assert info["frames"] == 10
    # Ten frames of the same depth: about sqrt(10) less noise than one.
    assert 0.2 < info["noise_ratio"] < 0.45
    assert info["limiting_mag_5sigma"] > 20.0
    assert info["coverage"] > 0.97


def _reference(frames):
    """The sequence's reference frame on its own grid and its mask."""
    native = [np.asarray(f.data) - float(np.median(f.data)) for f in frames]
    bad = frame_masks(frames, native, np)
    registration = register_frames(frames, native, bad)
    aligned = align_frames(frames, bad, np, registration=registration)
    return aligned, frames[aligned.ref]


def test_template_with_other_pointing_rotation_and_seeing_lands_on_the_stars(slow_field):
    _, frames, template = slow_field
    aligned, ref = _reference(frames)
    built = reference_template(template, ref, aligned.images[aligned.ref], aligned.bad[aligned.ref])
    image = to_numpy(built.image)
    ours = star_catalogue(np.nan_to_num(image), ~np.isfinite(image))[:20]
    theirs = star_catalogue(np.asarray(ref.data) - np.median(ref.data), np.zeros(ref.shape, bool))
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(theirs).query(ours)
    matched = dist < 2.0
    assert matched.mean() >= 0.5
    assert np.median(dist[matched]) < 0.05, dist[matched]
    # The template keeps its own (sharper) seeing; PSF matching happens per difference.
    assert built.info["psf_fwhm_px"] < 2.9


def _one_frame_template(slow_field, edit):
    _, frames, template = slow_field
    frame = template[0]
    data = edit(np.array(frame.data, dtype=np.float32))
    return Frame(**{**frame.__dict__, "data": data}), frames


def test_saturated_star_and_cosmic_ray_of_the_template_are_masked(slow_field):
    hit = (300, 200)  # (y, x) in the template frame's own pixels
    star = (120, 380)

    def edit(data):
        data[hit[0], hit[1] : hit[1] + 2] += 4000.0  # a two-pixel cosmic-ray hit
        yy, xx = np.mgrid[-12:13, -12:13]
        data[star[0] - 12 : star[0] + 13, star[1] - 12 : star[1] + 13] += (
            4e6 * np.exp(-(yy**2 + xx**2) / (2 * 1.2**2)) / (2 * np.pi * 1.2**2)
        )
        return np.minimum(data, 50000.0)  # SATURATE of the simulated headers

    tpl, frames = _one_frame_template(slow_field, edit)
    aligned, ref = _reference(frames)
    built = reference_template([tpl], ref, aligned.images[aligned.ref], aligned.bad[aligned.ref])
    image = to_numpy(built.image)
    # Where those pixels land on the reference grid.
    world = tpl.wcs.pixel_to_world_values([hit[1], star[1]], [hit[0], star[0]])
    x, y = ref.wcs.world_to_pixel_values(*world)
    for xi, yi in zip(np.round(x).astype(int), np.round(y).astype(int), strict=True):
        assert np.isnan(image[yi, xi]), (yi, xi)
    # The rest of the template is there.
    assert np.isfinite(image).mean() > 0.95
    # And no candidate comes of them in any difference.
    diffs = difference_frames(
        aligned.images, aligned.bad, ref=aligned.ref, gain=ref.gain, template=built.builder()
    )
    cands = find_candidates(diffs, threshold=3.5)
    for xi, yi in zip(x, y, strict=True):
        assert not np.any(np.hypot(cands.x - xi, cands.y - yi) < 6.0)


def test_cosmic_ray_mask_flags_sharp_hits_not_stars():
    rng = np.random.default_rng(1)
    image = rng.normal(0.0, 10.0, (64, 64)).astype(np.float32)
    yy, xx = np.mgrid[0:64, 0:64]
    image += 5000 * np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / (2 * 0.9**2)) / (2 * np.pi * 0.81)
    image[40, 40] += 500.0
    mask = cosmic_ray_mask(image, 10.0)
    assert mask[40, 40]
    assert not mask[18:23, 18:23].any()


def test_a_template_of_another_field_is_refused_naming_the_file(slow_field):
    _, frames, template = slow_field
    frame = template[3]
    header = frame.header.copy()
    header["CRVAL1"] += 0.8 * 512 * 1.2 / 3600 / np.cos(np.radians(header["CRVAL2"]))
    moved = Frame(**{**frame.__dict__, "wcs": WCS(header), "header": header})
    aligned, ref = _reference(frames)
    with pytest.raises(
        InputError, match=r"tpl_003\.fits: the template covers \d+% of the searched"
    ):
        reference_template(
            [template[0], moved], ref, aligned.images[aligned.ref], aligned.bad[aligned.ref]
        )


def test_a_template_without_wcs_is_refused_naming_the_file(slow_field):
    _, frames, template = slow_field
    blind = Frame(**{**template[1].__dict__, "wcs": None})
    aligned, ref = _reference(frames)
    with pytest.raises(InputError, match=r"tpl_001\.fits: .*has none; plate-solve"):
        reference_template([blind], ref, aligned.images[aligned.ref], aligned.bad[aligned.ref])


def test_difference_with_a_template_agrees_on_numpy_and_xp(slow_field, xp):
    _, frames, template = slow_field
    aligned, ref = _reference(frames)
    built = reference_template(template, ref, aligned.images[aligned.ref], aligned.bad[aligned.ref])
    on_numpy = difference_frames(
        aligned.images, aligned.bad, ref=aligned.ref, gain=ref.gain, template=built.builder()
    )
    moved = reference_template(
        template, ref, xp.asarray(aligned.images[aligned.ref]), xp.asarray(aligned.bad[aligned.ref])
    )
    on_xp = difference_frames(
        xp.asarray(aligned.images),
        xp.asarray(aligned.bad),
        ref=aligned.ref,
        gain=ref.gain,
        template=moved.builder(),
    )
    assert moved.info == built.info
    a, b = to_numpy(on_numpy.snr(4)), to_numpy(on_xp.snr(4))
    both = np.isfinite(a) & np.isfinite(b)
    assert both.mean() > 0.9
    np.testing.assert_allclose(a[both], b[both], atol=0.05)


def test_exclusion_sets_keep_frames_where_a_mover_has_left_its_psf():
    mjd = 60000.0 + np.arange(10) * 15 / 1440  # every 15 min
    # 24 px/day = 1 px/h: 1.5 FWHM of 3 px = 4.5 h, beyond the 2.25 h night.
    assert exclusion_sets(mjd, rate_px_per_day=24.0, fwhm_px=3.0) == [[]] * 10
    # 240 px/day = 10 px/h: frames 0.45 h (2 frames) or more apart.
    sets = exclusion_sets(mjd, rate_px_per_day=240.0, fwhm_px=3.0)
    assert sets[0] == list(range(2, 10))
    assert sets[5] == [0, 1, 2, 3, 7, 8, 9]


def test_exclusion_templates_leave_out_the_frames_near_each_one():
    mjd = 60000.0 + np.arange(6) * 30 / 1440
    subs = np.zeros((6, 8, 8), dtype=np.float32)
    subs[:, 4, 4] = np.arange(6) * 10.0  # frame k holds 10 k at one pixel
    median = np.median(subs, axis=0)
    build = exclusion_templates(mjd, rate_px_per_day=240.0, min_frames=3)
    templates, variance = build(subs, median, 3.0)
    assert variance is None
    # Frame 0's template: the median of frames 1..5 that are >= 0.45 h away (1..5).
    assert templates[0, 4, 4] == pytest.approx(np.median([10, 20, 30, 40, 50]))
    # With too few far frames a frame keeps the median of all.
    strict = exclusion_templates(mjd, rate_px_per_day=240.0, min_frames=6)
    assert np.array_equal(strict(subs, median, 3.0)[0][2], median)


def test_a_short_night_excludes_at_the_slowest_rate_that_leaves_half_the_frames():
    mjd = 60000.0 + np.arange(10) * 15 / 1440
    # Frame 4 (1 h in) has 5 frames at least 0.75 h away (0, 1, 7, 8, 9), no more.
    assert separable_gap(mjd, 5) * 24 == pytest.approx(0.75)
    subs = np.zeros((10, 4, 4), dtype=np.float32)
    subs[:, 1, 1] = np.arange(10.0)
    build = exclusion_templates(mjd, rate_px_per_day=1.0)  # far too slow for any frame
    templates, _ = build(subs, np.median(subs, axis=0), 3.0)
    # Frame 0 leaves out the frames within 0.75 h of it (0-2): the median of 3..9.
    assert templates[0, 1, 1] == pytest.approx(6.0)
    assert templates[9, 1, 1] == pytest.approx(3.0)


def test_simulated_template_night_holds_the_stars_and_the_movers_where_they_were():
    night = TemplateNight(frames=2, days=-1.0, offset_px=(4.0, 3.0), rotation_deg=0.2)
    kwargs = dict(seed=8, shape=(256, 256), n_frames=4, snr_range=(50.0, 60.0), noise=False)
    one = simulate_field(n_objects=1, rate_range=(2.0, 2.5), template=night, **kwargs)
    none = simulate_field(n_objects=0, template=night, **kwargs)
    assert [n for n, _, _ in one.template] == ["tpl_000.fits", "tpl_001.fits"]
    _, image, header = one.template[0]
    assert header["DATE-OBS"] < one.frames[0][2]["DATE-OBS"]
    mover = image - none.template[0][1]
    assert mover.max() > 0
    y, x = np.unravel_index(np.argmax(mover), mover.shape)
    obs = one.truth["objects"][0]["observations"]
    t = np.array([o["mjd"] for o in obs])
    mjd = one.truth["template"]["frames"][0]["mjd_mid"]
    ra = np.polyval(np.polyfit(t - t[0], [o["ra"] for o in obs], 1), mjd - t[0])
    dec = np.polyval(np.polyfit(t - t[0], [o["dec"] for o in obs], 1), mjd - t[0])
    ex, ey = WCS(header).world_to_pixel_values(ra, dec)
    assert np.hypot(x - ex, y - ey) < 1.5
    # The stars are the sequence's: same sky, other pixels.
    assert fits.Header(header)["CRVAL1"] != one.frames[0][2]["CRVAL1"]
    assert reference_index(_frames(one.frames)) in range(4)
