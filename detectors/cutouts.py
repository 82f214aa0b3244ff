"""Pictures for vetting moving objects: blink strips, review stamps and a field overview.

An astronomer accepts or rejects a reported mover by looking at it, as in the
blink windows of Tycho Tracker or Astrometrica: difference-image stamps
centred on the object in every frame show whether one point source really
moves along the fitted line, the frames themselves at a fixed sky position
show it move against the stars, and an overview of the static sky shows where
the tracks lie on the field. Arrays in, ``(H, W, 3)`` uint8 RGB out; write
them with :func:`detectors.io.write_png`.

Conventions are those of :mod:`detectors.types`: 0-based pixels on the
reference grid, arrays indexed ``[y, x]``, NaN = no data (drawn dark blue),
times in UTC MJD.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .backend import Array, to_numpy
from .types import Differences, Track

__all__ = [
    "FIELD_SIZE",
    "LABEL_HEIGHT",
    "SHEET_HEIGHT",
    "StripLabel",
    "field_overlay",
    "review_pictures",
    "review_sprite",
    "sky_box",
    "sprite_strip",
    "track_pictures",
    "track_strip",
]

#: Height in pixels of the text band above the panels of a labelled strip.
LABEL_HEIGHT = 36

_SEPARATOR = 2  # px between panels
_NAN_RGB = (20, 30, 110)  # no data: a colour no grey level can be mistaken for
_BAND_RGB = (24, 24, 24)
_SEPARATOR_RGB = (120, 120, 120)
_TEXT_RGB = (235, 235, 235)
#: Pixels a stretch's levels are taken from, at most: on a 2048^2 field, levels from
#: 10^5 of its pixels move no pixel of its pictures by more than one grey level.
_LEVEL_SAMPLE = 100_000
_MEASURED_RGB = (60, 230, 60)
_PREDICTED_RGB = (255, 150, 30)
_TEMPLATE_RGB = (90, 200, 255)
# Tableau-like colours that stay distinct from each other on a grey sky.
_TRACK_RGB = (
    (255, 80, 80),
    (80, 200, 255),
    (255, 200, 40),
    (120, 255, 120),
    (255, 120, 255),
    (255, 150, 30),
    (160, 140, 255),
    (60, 255, 220),
)


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in font at 12 px (its 10 px bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=12)
    except ImportError:  # Pillow built without FreeType cannot size its font
        return ImageFont.load_default()


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill) -> None:
    """Text with a 1-px black shadow, legible on any sky."""
    draw.text((xy[0] + 1, xy[1] + 1), text, fill=(0, 0, 0), font=_font())
    draw.text(xy, text, fill=fill, font=_font())


def _levels(
    values: np.ndarray, *, lo_sigma: float, hi_percentile: float
) -> tuple[float, float, float]:
    """Black level, white level and asinh softening from the finite values.

    Black is the sky minus ``lo_sigma`` robust sigma, white a high
    percentile (at least 8 sigma above the sky); the stretch is linear up to
    about 3 sigma, so the noise and faint sources stay visible.
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 1.0, 1.0
    if v.size > _LEVEL_SAMPLE:  # levels do not need every pixel of a big image
        v = v[:: v.size // _LEVEL_SAMPLE]
    sky = float(np.median(v))
    sigma = 1.4826 * float(np.median(np.abs(v - sky)))
    if not sigma > 0:
        sigma = float(np.std(v)) or 1.0
    hi = max(float(np.percentile(v, hi_percentile)), sky + 8.0 * sigma)
    return sky - lo_sigma * sigma, hi, (lo_sigma + 3.0) * sigma


def _stretch(image: np.ndarray, lo: float, hi: float, soft: float) -> np.ndarray:
    """Asinh stretch to [0, 1], NaN kept: linear below ``soft`` above black,
    so faint movers show, and logarithmic above, so bright ones keep their shape."""
    with np.errstate(invalid="ignore"):
        grey = np.arcsinh((image - lo) / soft) / np.arcsinh((hi - lo) / soft)
        return np.clip(grey, 0.0, 1.0)


def _to_rgb(grey: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] or NaN -> (H, W, 3) uint8 grey, NaN dark blue."""
    nan = np.isnan(grey)
    level = np.round(np.where(nan, 0.0, grey) * 255.0).astype(np.uint8)
    rgb = np.repeat(level[:, :, None], 3, axis=2)
    rgb[nan] = _NAN_RGB
    return rgb


def _stamp(image: Array, x: float, y: float, size: int) -> np.ndarray:
    """``size`` x ``size`` float32 stamp centred on the pixel holding (x, y),
    NaN where it runs off the image; only the stamp leaves the device."""
    if not (np.isfinite(x) and np.isfinite(y)):
        return np.full((size, size), np.nan, dtype=np.float32)
    return _box(image, round(x) - size // 2, round(y) - size // 2, size)


def _box(image: Array, x0: int, y0: int, size: int) -> np.ndarray:
    """``size`` x ``size`` of ``image`` whose first pixel is (x0, y0): of a data image a
    float32 stamp, NaN off the image; of an RGB picture its pixels, no-data colour off it."""
    rgb = image.ndim == 3
    out = np.empty((size, size, *image.shape[2:]), dtype=np.uint8 if rgb else np.float32)
    out[:] = _NAN_RGB if rgb else np.nan
    h, w = image.shape[:2]
    xa, xb = max(x0, 0), min(x0 + size, w)
    ya, yb = max(y0, 0), min(y0 + size, h)
    if xa < xb and ya < yb:
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] = to_numpy(image[ya:yb, xa:xb])
    return out


def _positions(track: Track, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Track position at times ``t`` (MJD).

    Between measured frames: linear interpolation. Beyond them: a straight
    line from the nearest measured point with the least-squares rate of all
    of them, steadier than the slope of one end pair of noisy points.
    """
    order = np.argsort(track.mjd)
    tm = np.asarray(track.mjd, dtype=float)[order]
    out = []
    for v in (track.x, track.y):
        vm = np.asarray(v, dtype=float)[order]
        p = np.interp(t, tm, vm)
        rate = np.polyfit(tm - tm[0], vm, 1)[0] if np.ptp(tm) > 0 else 0.0
        p = np.where(t < tm[0], vm[0] + rate * (t - tm[0]), p)
        out.append(np.where(t > tm[-1], vm[-1] + rate * (t - tm[-1]), p))
    return out[0], out[1]


def _ticks(draw: ImageDraw.ImageDraw, cx: float, cy: float, gap: float, fill) -> None:
    """Crosshair ticks from ``gap`` to ``2 gap`` around (cx, cy): the object itself stays clear."""
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        draw.line(
            [(cx + dx * gap, cy + dy * gap), (cx + 2 * dx * gap, cy + 2 * dy * gap)],
            fill=fill,
            width=2,
        )


def _captions(
    draw: ImageDraw.ImageDraw, options: Sequence[Sequence[str]], width: float
) -> list[str]:
    """One caption per panel, at the most detailed level that fits every panel."""
    for texts in zip(*options, strict=True):
        if all(draw.textlength(t, font=_font()) <= width for t in texts):
            return list(texts)
    return [""] * len(options)


@dataclass(frozen=True)
class StripLabel:
    """The text band of a blink strip: a title line, and each frame's SNR (None where
    the track was not measured there)."""

    title: str
    snr: Sequence[float | None]

    @classmethod
    def of(
        cls,
        *,
        name: str,
        rate: float,
        pa: float,
        stacked_snr: float,
        origin: str,
        snr: Sequence[float | None],
    ) -> StripLabel:
        """The label of a track, from a `Track` or from its record in the results contract."""
        measured = sum(v is not None for v in snr)
        title = (
            f'{name}   {rate:.1f}"/h   PA {pa:.0f}   SNR {stacked_snr:.1f}   '
            f"{measured}/{len(snr)} frames   {origin}"
        )
        return cls(title=title, snr=list(snr))

    @classmethod
    def of_track(cls, track: Track, n: int) -> StripLabel:
        """The label of a track found in a sequence of ``n`` frames."""
        snr: list[float | None] = [None] * n
        for i, v in zip(np.asarray(track.frames).tolist(), np.asarray(track.snr), strict=True):
            snr[i] = float(v)
        return cls.of(
            name=track.id or "track",
            rate=track.rate_arcsec_per_hour,
            pa=track.position_angle_deg,
            stacked_snr=track.stacked_snr,
            origin=track.origin,
            snr=snr,
        )


def track_strip(
    track: Track,
    diffs: Differences,
    mjd: np.ndarray,
    *,
    size: int = 41,
    scale: int = 4,
    label: bool = True,
) -> np.ndarray:
    """A blink strip of one track: template, then every frame's difference stamp.

    A real mover is one point source sitting in the middle of every
    difference stamp, on the static-sky panel nothing special; a star
    residual, a cosmic ray, or a chance line of noise peaks look different.
    Every frame of the sequence gets a panel, including those where the
    track was not measured, so missing detections can be judged too.
    The strip is cut from the track's `review_sprite` (`sprite_strip`):
    the review page's stamps and the strip are the same pixels.

    Parameters
    ----------
    track : Track
        The object; its measured ``x``, ``y`` are used where it was measured.
        Other frames use positions interpolated linearly in time between
        measured frames and extrapolated on the track's least-squares rate.
    diffs : Differences
        The search's difference images (``SearchResult.differences``, from
        ``find_moving_objects(..., keep_differences=True)``); NumPy or CuPy.
    mjd : ndarray, shape (N,)
        UTC MJD of each frame, in the order of ``diffs.diff``.
    size : int, keyword-only
        Stamp side in image pixels (odd, so the object's pixel is the centre).
    scale : int, keyword-only
        Nearest-neighbour magnification, so that pixels stay visible.
    label : bool, keyword-only
        Add a text band on top: track id, rate, position angle, stacked SNR,
        and one caption per panel (frame index, minutes since the first
        frame, SNR where measured).

    Returns
    -------
    ndarray, shape (size * scale [+ LABEL_HEIGHT], (N + 1) * size * scale + 2 N, 3), uint8
        Panels left to right, separated by 2-px grey lines: the template,
        stretched with the frames as on the review page, then the
        difference stamps, sharing one stretch so that brightness compares
        from frame to frame. Ticks mark the object: green where measured,
        orange where predicted only, blue on the template (its position at
        mid-sequence). NaN (no data, off the image) is dark blue.

    Raises
    ------
    ValueError
        If ``size`` or ``scale`` is unusable, ``mjd`` does not match the
        difference images, or the track has no measured frame in them.
    """
    _check_strip(size, scale)
    mjd = _checked(track, diffs, mjd)
    stamp = max(size, _SPRITE_STAMP)
    sprite, placed = _review_sprite(
        track, diffs, mjd, stamp=stamp, margin=_SPRITE_MARGIN, max_box=max(stamp, _SPRITE_BOX)
    )
    return sprite_strip(
        sprite,
        placed,
        mjd,
        StripLabel.of_track(track, mjd.size) if label else None,
        size=size,
        scale=scale,
    )


def _check_strip(size: int, scale: int) -> None:
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd number >= 3 so the object is centred, got {size}")
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")


def _checked(track: Track, diffs: Differences, mjd: np.ndarray) -> np.ndarray:
    """``mjd`` as floats, once it matches the difference images and the track's frames."""
    mjd = np.asarray(mjd, dtype=float)
    if diffs.diff.ndim != 3:
        raise ValueError(
            f"diffs.diff must be an (N, H, W) stack of difference images, got shape "
            f"{diffs.diff.shape}; pass SearchResult.differences"
        )
    n = diffs.diff.shape[0]
    if mjd.shape != (n,):
        raise ValueError(
            f"mjd has shape {mjd.shape} but there are {n} difference images; pass "
            "np.array([f.mjd for f in result.frames]) of the same search"
        )
    frames = np.asarray(track.frames, dtype=np.int64)
    if frames.size == 0 or frames.min() < 0 or frames.max() >= n:
        raise ValueError(
            f"track {track.id!r} has frames {frames.tolist()} outside the {n} difference "
            "images; use the Differences of the search that found it"
        )
    return mjd


def sprite_strip(
    sprite: np.ndarray,
    placed: dict[str, Any],
    mjd: np.ndarray,
    label: StripLabel | None,
    *,
    size: int = 41,
    scale: int = 4,
) -> np.ndarray:
    """A track's blink strip (`track_strip`) cut from its review sprite.

    The review sheets are drawn once, when a search finishes; a strip is a
    view of the same stamps, enlarged and labelled for a picture viewer, so
    it is made when someone asks for it, from the sheet alone.

    Parameters
    ----------
    sprite : ndarray, shape (h, w, 3), uint8
        The track's `review_sprite` (cut from its sheet).
    placed : dict
        The sprite's layout, as `review_sprite` returns it.
    mjd : ndarray, shape (N,)
        UTC MJD of each frame.
    label : StripLabel or None
        The text band; None for a strip without one.
    size, scale : int, keyword-only
        As in `track_strip`; ``size`` at most the sprite's stamp side.

    Returns
    -------
    ndarray, uint8
        As `track_strip`.
    """
    _check_strip(size, scale)
    diff, sky = placed["diff"], placed["sky"]
    xy = np.asarray(placed["xy"], dtype=float)
    mjd = np.asarray(mjd, dtype=float)
    n = len(xy)
    if mjd.shape != (n,):
        raise ValueError(f"mjd has shape {mjd.shape} but the sprite has {n} frames")
    if size > diff["size"]:
        raise ValueError(f"size {size} is larger than the sprite's stamps ({diff['size']} px)")
    if label is not None and len(label.snr) != n:
        raise ValueError(f"the label has {len(label.snr)} frames, the sprite {n}")
    cut = (diff["size"] - size) // 2
    panels = [
        sprite[
            diff["top"] + cut : diff["top"] + cut + size,
            i * diff["size"] + cut : i * diff["size"] + cut + size,
        ]
        for i in range(n)
    ]
    # The template panel: the sky row's first box, around the mid-sequence position.
    order = np.argsort(mjd)
    mid = 0.5 * (mjd.min() + mjd.max())
    mx, my = (float(np.interp(mid, mjd[order], xy[order, k])) for k in (0, 1))
    box = sprite[sky["top"] : sky["top"] + sky["size"], : sky["size"]]
    half = size // 2
    template = _box(box, round(mx) - half, round(my) - half, size)
    measured = np.asarray(placed["measured"], dtype=bool)
    marks = [(mx - round(mx), my - round(my), _TEMPLATE_RGB)] + [
        (x - round(x), y - round(y), _MEASURED_RGB if measured[i] else _PREDICTED_RGB)
        for i, (x, y) in enumerate(xy)
    ]
    panel = size * scale
    top = LABEL_HEIGHT if label is not None else 0
    strip = np.empty((top + panel, (n + 1) * panel + n * _SEPARATOR, 3), dtype=np.uint8)
    strip[:] = _SEPARATOR_RGB
    strip[:top] = _BAND_RGB
    lefts = [k * (panel + _SEPARATOR) for k in range(n + 1)]
    for left, rgb in zip(lefts, [template, *panels], strict=True):
        strip[top:, left : left + panel] = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)

    image = Image.fromarray(strip)
    draw = ImageDraw.Draw(image)
    gap = min(max(3.0, 1.5 * placed["fwhm"]), 0.45 * half) * scale
    for left, (fx, fy, colour) in zip(lefts, marks, strict=True):
        # The object's pixel is the stamp's centre; the tick centre is its sub-pixel place.
        _ticks(
            draw,
            left + (half + fx + 0.5) * scale - 0.5,
            top + (half + fy + 0.5) * scale - 0.5,
            gap,
            colour,
        )
    if label is not None:
        _text(draw, (4, 2), label.title, _TEXT_RGB)
        options = [("template", "tmpl", "T")]
        for i, snr in enumerate(label.snr):
            minutes = (mjd[i] - mjd.min()) * 1440.0
            what = "predicted" if snr is None else f"SNR {snr:.0f}"
            options.append((f"{i}  {minutes:+.0f} min  {what}", f"{i} {minutes:+.0f}m", str(i)))
        for left, text, (_, _, colour) in zip(
            lefts, _captions(draw, options, panel - 4), marks, strict=True
        ):
            _text(draw, (left + 3, 19), text, colour)
    return np.asarray(image)


def _sky(template: Array, max_size: int) -> tuple[np.ndarray, float]:
    """The stretched static sky (grey in [0, 1], NaN = no data) at most ``max_size`` pixels
    wide, and its scale. Averaged down before the stretch: a quarter of the work on a
    2048-pixel field; a block more than half without data has none."""
    sky = np.asarray(to_numpy(template), dtype=np.float32)
    h, w = sky.shape
    levels = _levels(sky, lo_sigma=1.0, hi_percentile=99.5)
    f = min(1.0, max_size / max(h, w))
    if f < 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        nan = ~np.isfinite(sky)
        filled = np.where(nan, levels[0], sky).astype(np.float32)
        small = np.asarray(Image.fromarray(filled, "F").resize(size, Image.Resampling.BOX))
        gone = Image.fromarray(nan.astype(np.float32), "F").resize(size, Image.Resampling.BOX)
        sky = np.where(np.asarray(gone) > 0.5, np.nan, small)
    return _stretch(sky, *levels), f


def field_overlay(template: Array, tracks: Sequence[Track], *, max_size: int = 1200) -> np.ndarray:
    """The static sky with every track drawn on it: where the movers are.

    Parameters
    ----------
    template : array, shape (H, W)
        Static sky (``Differences.template``), NumPy or CuPy; NaN = no data.
    tracks : sequence of Track
        May be empty: the picture is then the sky alone.
    max_size : int, keyword-only
        Longest side of the picture; larger images are area-averaged down
        to it, smaller ones are kept at full resolution.

    Returns
    -------
    ndarray, shape (h, w, 3), uint8
        Asinh-stretched grey sky (NaN dark blue). Each track is a coloured
        line from its first to its last measured position, a small circle
        where it starts, and its id beside its end.

    Raises
    ------
    ValueError
        If ``template`` is not 2-D or ``max_size`` is below 16.
    """
    if np.ndim(template) != 2:
        raise ValueError(f"template must be a 2-D image, got shape {template.shape}")
    if max_size < 16:
        raise ValueError(f"max_size must be at least 16 pixels, got {max_size}")
    grey, f = _sky(template, max_size)
    image = Image.fromarray(_to_rgb(grey))
    draw = ImageDraw.Draw(image)
    for k, track in enumerate(tracks):
        colour = _TRACK_RGB[k % len(_TRACK_RGB)]
        order = np.argsort(track.mjd)
        x = (np.asarray(track.x, dtype=float)[order] + 0.5) * f - 0.5
        y = (np.asarray(track.y, dtype=float)[order] + 0.5) * f - 0.5
        draw.ellipse([x[0] - 4, y[0] - 4, x[0] + 4, y[0] + 4], outline=colour, width=1)
        draw.line([(x[0], y[0]), (x[-1], y[-1])], fill=colour, width=2)
        name = track.id or str(k + 1)
        tx = min(x[-1] + 6, image.width - draw.textlength(name, font=_font()) - 2)
        _text(draw, (max(tx, 2), min(max(y[-1] - 6, 2), image.height - 14)), name, colour)
    return np.asarray(image)


def track_pictures(
    tracks: Sequence[Track], diffs: Differences, mjd: Sequence[float]
) -> dict[str, np.ndarray]:
    """Every picture of a search by file name: ``overview.png`` and ``<track id>.png``.

    Parameters
    ----------
    tracks : sequence of Track
        The reported tracks (their ``id`` names the files).
    diffs : Differences
        The search's difference images.
    mjd : sequence of float
        UTC MJD of each frame.

    Returns
    -------
    dict of str to ndarray, shape (h, w, 3), uint8
    """
    t = np.asarray(mjd, dtype=float)
    pictures = {"overview.png": field_overlay(diffs.template, tracks)}
    for track in tracks:
        pictures[f"{track.id}.png"] = track_strip(track, diffs, t)
    return pictures


#: Longest side of the review page's field picture: twice the width it is shown at.
FIELD_SIZE = 640
#: Height of a sheet of review sprites (`review_pictures`), pixels.
SHEET_HEIGHT = 4096
#: Grey levels of a review sprite: 255, so that with the no-data colour it fits
#: a 256-colour palette (`detectors.io.write_png` then writes a third of the bytes).
_SPRITE_LEVELS = 254.0 / 255.0
#: A review sprite's difference stamp side, sky margin and largest sky box (pixels).
_SPRITE_STAMP, _SPRITE_MARGIN, _SPRITE_BOX = 63, 20, 255


def review_sprite(
    track: Track,
    diffs: Differences,
    mjd: np.ndarray,
    *,
    stamp: int = _SPRITE_STAMP,
    margin: int = _SPRITE_MARGIN,
    max_box: int = _SPRITE_BOX,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Every stamp a reviewer needs of one track, in one picture, and where each one is.

    A review page shows three things side by side and blinks the first two
    in step, frame by frame: the difference stamp centred on the object (is
    it one point source, every frame?), the frame itself at a fixed sky
    position (does it move against the stars, along its track?), and the
    template there (is a star, a bad column or a galaxy under it?). Stamps
    are at the image's own pixels, to be enlarged by the viewer with
    nearest-neighbour scaling: the picture stays small and crisp.

    Parameters
    ----------
    track : Track
        The object; positions in frames where it was not measured are
        interpolated or extrapolated as in `track_strip`.
    diffs : Differences
        The search's difference images and template, NumPy or CuPy; a frame
        is rebuilt as difference + template (on the reference grid every
        frame is aligned, so a fixed pixel box is a fixed sky position).
    mjd : ndarray, shape (N,)
        UTC MJD of each frame, in the order of ``diffs.diff``.
    stamp : int, keyword-only
        Side of the difference stamps in pixels (odd: the object's pixel is
        the centre); also the smallest sky box.
    margin : int, keyword-only
        Pixels of sky around the object's whole path in the sky box.
    max_box : int, keyword-only
        Largest sky box; a faster object leaves it at the ends of its path.

    Returns
    -------
    sprite : ndarray, shape (stamp + S, max(N stamp, (N + 1) S), 3), uint8
        Top row: the N difference stamps, left to right, one shared
        stretch. Bottom row (S = the sky box's side): the template, then
        the N frames, one shared stretch, so the static sky looks the same
        in each. NaN (no data, off the image) is dark blue.
    layout : dict
        JSON-safe: ``diff`` (``size``, ``top``), ``sky`` (``size``, ``top``,
        and ``x0``, ``y0``: the box's first pixel on the reference grid),
        ``xy`` (the object's position in the sky box per frame, box pixels),
        ``measured`` (per frame), ``path`` (first and last measured
        positions on the reference grid), ``fwhm`` (of the differences,
        pixels: `sprite_strip` spaces its ticks by it), ``width``, ``height``.

    Raises
    ------
    ValueError
        As `track_strip`, or if ``stamp`` is not odd, or ``margin`` or
        ``max_box`` is unusable.
    """
    if stamp < 3 or stamp % 2 == 0:
        raise ValueError(f"stamp must be an odd number >= 3 so the object is centred, got {stamp}")
    if margin < 0 or max_box < stamp:
        raise ValueError(
            f"margin must be >= 0 and max_box >= stamp, got margin={margin}, max_box={max_box}"
        )
    mjd = _checked(track, diffs, mjd)
    return _review_sprite(track, diffs, mjd, stamp=stamp, margin=margin, max_box=max_box)


def sky_box(
    xs: np.ndarray,
    ys: np.ndarray,
    *,
    stamp: int = _SPRITE_STAMP,
    margin: int = _SPRITE_MARGIN,
    max_box: int = _SPRITE_BOX,
) -> tuple[int, int, int]:
    """First pixel ``(x0, y0)`` and side of a review sprite's sky box around a path
    (positions ``xs``, ``ys`` on the reference grid): square, centred on the path, holding
    it and ``margin`` pixels around it, at least ``stamp`` and at most ``max_box`` wide."""
    extent = max(float(np.ptp(xs)), float(np.ptp(ys)))
    size = int(min(max(math.ceil(extent) + 1 + 2 * margin, stamp), max_box))
    x0 = round(0.5 * (xs.min() + xs.max()) - (size - 1) / 2)
    y0 = round(0.5 * (ys.min() + ys.max()) - (size - 1) / 2)
    return x0, y0, size


def _review_sprite(
    track: Track, diffs: Differences, mjd: np.ndarray, *, stamp: int, margin: int, max_box: int
) -> tuple[np.ndarray, dict[str, Any]]:
    n = mjd.size
    measured = np.zeros(n, dtype=bool)
    measured[track.frames] = True
    xs, ys = _positions(track, mjd)
    xs[track.frames], ys[track.frames] = track.x, track.y

    diff = np.stack([_stamp(diffs.diff[i], xs[i], ys[i], stamp) for i in range(n)])
    diff = _stretch(diff, *_levels(diff, lo_sigma=2.0, hi_percentile=99.7))

    x0, y0, size = sky_box(xs, ys, stamp=stamp, margin=margin, max_box=max_box)
    template = _box(diffs.template, x0, y0, size)
    sky = np.stack([template] + [_box(diffs.diff[i], x0, y0, size) + template for i in range(n)])
    sky = _stretch(sky, *_levels(sky, lo_sigma=1.5, hi_percentile=99.5))

    width = max(n * stamp, (n + 1) * size)
    sprite = np.empty((stamp + size, width, 3), dtype=np.uint8)
    sprite[:] = _BAND_RGB
    for i in range(n):
        sprite[:stamp, i * stamp : (i + 1) * stamp] = _to_rgb(diff[i] * _SPRITE_LEVELS)
    for k in range(n + 1):
        sprite[stamp:, k * size : (k + 1) * size] = _to_rgb(sky[k] * _SPRITE_LEVELS)

    order = np.argsort(track.mjd)
    first, last = order[0], order[-1]
    layout = {
        "width": width,
        "height": stamp + size,
        "diff": {"size": stamp, "top": 0},
        "sky": {"size": size, "top": stamp, "x0": x0, "y0": y0},
        "xy": [
            [round(float(x - x0), 2), round(float(y - y0), 2)] for x, y in zip(xs, ys, strict=True)
        ],
        "measured": measured.tolist(),
        "fwhm": round(float(diffs.fwhm), 2),
        "path": [
            [round(float(track.x[first]), 2), round(float(track.y[first]), 2)],
            [round(float(track.x[last]), 2), round(float(track.y[last]), 2)],
        ],
    }
    return sprite, layout


def _field(template: Array, max_size: int) -> np.ndarray:
    """The static sky at most ``max_size`` pixels wide, grey (255 levels) and no-data blue:
    a palette holds it (`_SPRITE_LEVELS`). A page shows it small, and draws the tracks."""
    grey, _ = _sky(template, max_size)
    return _to_rgb(grey * _SPRITE_LEVELS)


def review_pictures(
    tracks: Sequence[Track], diffs: Differences, mjd: Sequence[float]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The review page's pictures by file name, and where each track's stamps are in them.

    Parameters
    ----------
    tracks : sequence of Track
        The reported tracks (their ``id`` names the files).
    diffs : Differences
        The search's difference images.
    mjd : sequence of float
        UTC MJD of each frame.

    Returns
    -------
    pictures : dict of str to ndarray, shape (h, w, 3), uint8
        ``field.png``: the static sky, at most `FIELD_SIZE` pixels wide, with
        no track drawn (the page draws them, labelled, and can highlight
        one); ``stamps-<k>.png``: sheets of `review_sprite` pictures stacked
        top to bottom, at most `SHEET_HEIGHT` pixels tall unless one sprite
        is taller. A page loads a few sheets, not a picture per track: each
        request costs the server more than its bytes.
    layout : dict
        JSON-safe: ``shape`` (the reference grid's height and width; the
        field picture covers it all), ``mjd`` (per frame), ``sheets`` (each
        sheet's width and height) and ``tracks``: per track id, its sheet
        (``file``), its sprite's first row in it (``top``) and the sprite's
        layout.
    """
    t = np.asarray(mjd, dtype=float)
    pictures: dict[str, np.ndarray] = {"field.png": _field(diffs.template, FIELD_SIZE)}
    layout: dict[str, Any] = {
        "shape": list(diffs.template.shape),
        "mjd": t.tolist(),
        "sheets": {},
        "tracks": {},
    }
    sheets: list[list[tuple[str, np.ndarray, dict[str, Any]]]] = []
    for track in tracks:
        sprite, placed = review_sprite(track, diffs, t)
        if not sheets or sum(s.shape[0] for _, s, _ in sheets[-1]) + sprite.shape[0] > SHEET_HEIGHT:
            sheets.append([])
        sheets[-1].append((track.id, sprite, placed))
    for k, group in enumerate(sheets):
        name = f"stamps-{k}.png"
        sheet = np.empty(
            (sum(s.shape[0] for _, s, _ in group), max(s.shape[1] for _, s, _ in group), 3),
            dtype=np.uint8,
        )
        sheet[:] = _BAND_RGB
        top = 0
        for track_id, sprite, placed in group:
            sheet[top : top + sprite.shape[0], : sprite.shape[1]] = sprite
            layout["tracks"][track_id] = {**placed, "file": name, "top": top}
            top += sprite.shape[0]
        pictures[name] = sheet
        layout["sheets"][name] = [sheet.shape[1], sheet.shape[0]]
    return pictures, layout
