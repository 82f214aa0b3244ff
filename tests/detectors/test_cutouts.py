"""Blink strips, review stamps and the field overview, on a seeded 256x256,
6-frame sequence with one bright mover (one track)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from detectors import cutouts
from detectors.config import SearchConfig
from detectors.cutouts import (
    LABEL_HEIGHT,
    StripLabel,
    field_overlay,
    review_pictures,
    review_sprite,
    sprite_strip,
    track_strip,
)
from detectors.io import write_png
from detectors.search import find_moving_objects
from detectors.types import Track

from .helpers import make_sequence

SIZE, SCALE = 41, 4
PANEL = SIZE * SCALE


@pytest.fixture(scope="module")
def search():
    frames, _ = make_sequence()
    result = find_moving_objects(frames, config=SearchConfig(faint=False), keep_differences=True)
    assert len(result.tracks) == 1
    return result


def _mjd(search) -> np.ndarray:
    return np.array([f.mjd for f in search.frames])


def _panel(strip: np.ndarray, k: int) -> np.ndarray:
    """Panel k (0 = template) of an unlabelled strip, as grey levels."""
    left = k * (PANEL + 2)
    return strip[:, left : left + PANEL].astype(float).mean(axis=2)


def _subset(track: Track, keep: list[int]) -> Track:
    """The same track measured in fewer frames."""
    k = np.array(keep)
    per_frame = ("frames", "mjd", "x", "y", "ra", "dec", "flux", "snr", "mag")
    return dataclasses.replace(track, **{name: getattr(track, name)[k] for name in per_frame})


def _shifted(track: Track, dx: float, dy: float) -> Track:
    return dataclasses.replace(track, x=track.x + dx, y=track.y + dy)


def test_strip_shape_and_label(search):
    strip = track_strip(search.tracks[0], search.differences, _mjd(search))
    n = len(search.frames)
    assert strip.dtype == np.uint8
    assert strip.shape == (PANEL + LABEL_HEIGHT, (n + 1) * PANEL + 2 * n, 3)
    assert strip[:LABEL_HEIGHT].std() > 0  # the text band holds text


@pytest.mark.parametrize("keep", [None, [1, 2, 4]], ids=["measured", "predicted"])
def test_every_difference_panel_is_centred_on_the_mover(search, keep):
    """Also where the track was not measured: frame 3 is interpolated, 0 and 5 extrapolated."""
    track = search.tracks[0] if keep is None else _subset(search.tracks[0], keep)
    strip = track_strip(track, search.differences, _mjd(search), label=False)
    assert strip.shape[0] == PANEL
    c, r, edge = PANEL // 2, 2 * SCALE, 4 * SCALE
    for k in range(1, len(search.frames) + 1):
        grey = _panel(strip, k)
        centre = grey[c - r : c + r, c - r : c + r]
        border = np.concatenate(
            [
                grey[:edge].ravel(),
                grey[-edge:].ravel(),
                grey[:, :edge].ravel(),
                grey[:, -edge:].ravel(),
            ]
        )
        assert centre.mean() > np.percentile(border, 99), k
        pixels = uniform_filter(grey[SCALE // 2 :: SCALE, SCALE // 2 :: SCALE], size=3)
        peak = np.unravel_index(np.argmax(pixels), pixels.shape)
        assert np.abs(np.subtract(peak, SIZE // 2)).max() <= 1, (k, peak)


def test_track_near_the_edge_is_padded_with_no_data_colour(search):
    track = search.tracks[0]
    near = _shifted(track, 3.0 - track.x.min(), 0.0)
    strip = track_strip(near, search.differences, _mjd(search), label=False)
    left = strip[:, PANEL + 2 : PANEL + 2 + 8 * SCALE].astype(int)  # frame 0, left edge
    assert np.all(left[..., 2] > left[..., 0] + 50)  # dark blue, never a grey level


def test_track_off_the_image_renders_all_no_data(search):
    off = _shifted(search.tracks[0], 1000.0, 1000.0)
    strip = track_strip(off, search.differences, _mjd(search), size=11, scale=2)
    assert strip.dtype == np.uint8
    rgb = strip[LABEL_HEIGHT:].astype(int)
    no_data = rgb[..., 2] > rgb[..., 0] + 50
    assert no_data.mean() > 0.8  # all but the separators and the ticks


def test_strip_from_device_arrays_matches_numpy(search, xp):
    diffs = search.differences
    on_device = dataclasses.replace(
        diffs, diff=xp.asarray(diffs.diff), template=xp.asarray(diffs.template)
    )
    expected = track_strip(search.tracks[0], diffs, _mjd(search))
    np.testing.assert_array_equal(track_strip(search.tracks[0], on_device, _mjd(search)), expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"size": 40}, "odd"), ({"scale": 0}, "scale"), ({"mjd": np.zeros(3)}, "mjd")],
)
def test_strip_refuses_unusable_options(search, kwargs, match):
    mjd = kwargs.pop("mjd", _mjd(search))
    with pytest.raises(ValueError, match=match):
        track_strip(search.tracks[0], search.differences, mjd, **kwargs)


def test_overlay_respects_max_size_and_draws_the_track(search):
    overlay = field_overlay(search.differences.template, search.tracks, max_size=100)
    assert overlay.dtype == np.uint8 and overlay.ndim == 3
    assert max(overlay.shape[:2]) == 100
    assert overlay.std() > 0
    rgb = overlay.astype(int)
    coloured = (rgb[..., 0] - rgb[..., 1] > 100) & (rgb[..., 0] - rgb[..., 2] > 100)
    assert coloured.sum() > 10  # the first track is drawn red


def test_overlay_without_tracks_is_the_sky(search, xp):
    template = xp.asarray(search.differences.template)
    overlay = field_overlay(template, [], max_size=1200)
    assert overlay.shape == (*search.differences.template.shape, 3)  # never upscaled
    assert overlay.std() > 0
    sky = np.isfinite(search.differences.template)
    assert np.all(overlay[sky][:, 0] == overlay[sky][:, 2])  # grey: no track drawn
    assert np.all(overlay[~sky][:, 2] > overlay[~sky][:, 0])  # no data is dark blue


# --------------------------------------------------------------------------- review stamps


def _peak(grey: np.ndarray) -> tuple[int, int]:
    smooth = uniform_filter(grey, size=3)
    y, x = np.unravel_index(np.argmax(smooth), smooth.shape)
    return int(y), int(x)


def test_review_sprite_holds_every_stamp_where_its_layout_says(search):
    track, n = search.tracks[0], len(search.frames)
    sprite, layout = review_sprite(track, search.differences, _mjd(search))
    d, s = layout["diff"]["size"], layout["sky"]["size"]
    assert d == 63 and 63 <= s <= 255
    assert sprite.dtype == np.uint8
    assert sprite.shape == (d + s, max(n * d, (n + 1) * s), 3)
    assert (layout["height"], layout["width"]) == sprite.shape[:2]
    assert layout["sky"]["top"] == d and layout["measured"] == [True] * n
    json.dumps(layout)  # JSON-safe, as the page reads it
    for i in range(n):  # the mover is the centre of each difference stamp
        cell = sprite[:d, i * d : (i + 1) * d].astype(float).mean(axis=2)
        assert np.abs(np.subtract(_peak(cell), d // 2)).max() <= 1, i
    template = sprite[d:, :s].astype(float).mean(axis=2)
    for i, (x, y) in enumerate(layout["xy"]):  # on the fixed sky box, it moves along xy
        frame = sprite[d:, (i + 1) * s : (i + 2) * s].astype(float).mean(axis=2)
        xx, yy = round(x), round(y)
        assert 2 <= xx < s - 2 and 2 <= yy < s - 2, (i, x, y)
        here = (slice(yy - 2, yy + 3), slice(xx - 2, xx + 3))
        assert frame[here].mean() > template[here].mean() + 40, i  # not in the static sky
    xs = [p[0] for p in layout["xy"]]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 20  # the mover goes +x (30 px/h)
    x0, y0 = layout["sky"]["x0"], layout["sky"]["y0"]
    first = layout["path"][0]
    assert abs(first[0] - (x0 + layout["xy"][0][0])) < 0.01
    assert abs(first[1] - (y0 + layout["xy"][0][1])) < 0.01


def test_review_sprite_box_grows_with_the_path_up_to_its_limit(search):
    track, diffs, mjd = search.tracks[0], search.differences, _mjd(search)
    _, small = review_sprite(track, diffs, mjd, margin=0, max_box=63)
    _, wide = review_sprite(track, diffs, mjd, margin=40)
    assert small["sky"]["size"] == 63
    assert wide["sky"]["size"] > review_sprite(track, diffs, mjd, margin=10)[1]["sky"]["size"]


def test_review_sprite_is_a_small_exact_palette_png(search, tmp_path):
    """Grey levels and the no-data colour fit a palette: half the bytes of RGB, exactly."""
    from PIL import Image

    sprite, _ = review_sprite(search.tracks[0], search.differences, _mjd(search))
    path = write_png(tmp_path / "s.png", sprite)
    with Image.open(path) as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), sprite)


def test_review_pictures_stack_the_sprites_on_sheets(search, monkeypatch):
    diffs, mjd = search.differences, _mjd(search)
    sprite, placed = review_sprite(search.tracks[0], diffs, mjd)
    many = [dataclasses.replace(search.tracks[0], id=f"AH{i:05d}") for i in range(5)]
    monkeypatch.setattr(cutouts, "SHEET_HEIGHT", 2 * sprite.shape[0])  # two sprites a sheet
    pictures, layout = review_pictures(many, diffs, mjd)
    assert sorted(pictures) == ["field.png", "stamps-0.png", "stamps-1.png", "stamps-2.png"]
    assert pictures["field.png"].shape == (*diffs.template.shape, 3)  # never upscaled
    assert layout["shape"] == list(diffs.template.shape) and len(layout["mjd"]) == len(mjd)
    for name, (width, height) in layout["sheets"].items():
        assert pictures[name].shape == (height, width, 3)
    for i, track in enumerate(many):
        spot = layout["tracks"][track.id]
        assert (spot["file"], spot["top"]) == (f"stamps-{i // 2}.png", (i % 2) * sprite.shape[0])
        sheet = pictures[spot["file"]]
        np.testing.assert_array_equal(
            sheet[spot["top"] : spot["top"] + sprite.shape[0], : sprite.shape[1]], sprite
        )
        assert {k: v for k, v in spot.items() if k not in ("file", "top")} == placed


def test_a_strip_cut_from_a_written_sheet_is_the_tracks_strip(search, tmp_path):
    """What the API serves (a strip cut from the PNG sheet) is pixel for pixel what
    ``detect --cutouts`` draws from the differences."""
    from PIL import Image

    track, mjd = search.tracks[0], _mjd(search)
    pictures, layout = review_pictures([track], search.differences, mjd)
    spot = layout["tracks"][track.id]
    with Image.open(write_png(tmp_path / spot["file"], pictures[spot["file"]])) as image:
        sheet = np.asarray(image.convert("RGB"))
    sprite = sheet[spot["top"] : spot["top"] + spot["height"], : spot["width"]]
    label = StripLabel.of_track(track, len(mjd))
    np.testing.assert_array_equal(
        sprite_strip(sprite, spot, mjd, label), track_strip(track, search.differences, mjd)
    )
    np.testing.assert_array_equal(
        sprite_strip(sprite, spot, mjd, None, size=11, scale=2),
        track_strip(track, search.differences, mjd, size=11, scale=2, label=False),
    )
    with pytest.raises(ValueError, match="larger than the sprite"):
        sprite_strip(sprite, spot, mjd, None, size=spot["diff"]["size"] + 2)
    with pytest.raises(ValueError, match="frames"):
        sprite_strip(sprite, spot, mjd, StripLabel(title="x", snr=[None]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"stamp": 64}, "odd"), ({"max_box": 11}, "max_box"), ({"mjd": np.zeros(2)}, "mjd")],
)
def test_review_sprite_refuses_unusable_options(search, kwargs, match):
    mjd = kwargs.pop("mjd", _mjd(search))
    with pytest.raises(ValueError, match=match):
        review_sprite(search.tracks[0], search.differences, mjd, **kwargs)


def test_review_sprite_from_device_arrays_matches_numpy(search, xp):
    diffs = search.differences
    on_device = dataclasses.replace(
        diffs, diff=xp.asarray(diffs.diff), template=xp.asarray(diffs.template)
    )
    expected, layout = review_sprite(search.tracks[0], diffs, _mjd(search))
    sprite, same = review_sprite(search.tracks[0], on_device, _mjd(search))
    np.testing.assert_array_equal(sprite, expected)
    assert same == layout


def test_the_review_field_is_the_sky_small_grey_and_palette_sized(search, tmp_path):
    from PIL import Image

    template = np.array(search.differences.template)
    template[:40, :40] = np.nan  # no data in a corner
    diffs = dataclasses.replace(search.differences, template=template)
    pictures, _ = review_pictures([], diffs, _mjd(search))
    big = dataclasses.replace(diffs, template=np.kron(template, np.ones((4, 4), np.float32)))
    small = review_pictures([], big, _mjd(search))[0]["field.png"]
    assert small.shape == (640, 640, 3)  # 1024 px averaged down to FIELD_SIZE
    for field in (pictures["field.png"], small):
        n = field.shape[0]
        corner, rest = (
            field[:5, :5].astype(int),
            field[n // 3 : n // 2, n // 3 : n // 2].astype(int),
        )
        assert np.all(corner[..., 2] > corner[..., 0] + 50)  # no data: dark blue
        assert np.all(rest[..., 0] == rest[..., 2]) and rest.std() > 0  # grey sky
        with Image.open(write_png(tmp_path / "f.png", field)) as image:
            assert image.mode == "P"
