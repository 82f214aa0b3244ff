"""Detector defects, found in each frame's own pixels before alignment.

Hot and warm pixels and bad columns are fixed on the detector, so once frames
are dithered (or drift) and are aligned they hop about on the sky and can
mimic a mover. They are found where they are still fixed: in the median of
the frames in detector coordinates, where dithered stars are smooth and
defects stay sharp. Frames cut differently (heights that differ by a few
rows, cutouts, trimmed overscan) are placed on the detector by their
``Frame.origin`` first, so one map serves them all. Saturated stars are
masked with a margin, since their cores and wings leave residuals no
template can subtract.
"""

from __future__ import annotations

from types import ModuleType

from .backend import Array, get_ndimage, get_xp, map_frames
from .stats import MAD_TO_SIGMA, mad_std, stack_median
from .types import Frame

__all__ = ["defect_mask", "frame_masks", "saturation_mask"]


def saturation_mask(image: Array, level: float | None, xp: ModuleType, *, grow: int = 4) -> Array:
    """Pixels at or above ``level``, grown by ``grow`` pixels (empty when unknown)."""
    if level is None:
        return xp.zeros(image.shape, dtype=bool)
    sat = image >= level  # NaN compares False
    ys, xs = xp.nonzero(sat)
    side = 2 * grow + 1
    if ys.size * side * side > sat.size // 8:  # many saturated pixels: filter the image
        return get_ndimage(xp).maximum_filter(sat.astype(xp.uint8), size=side) > 0
    # Few (the usual case): mark the box around each one, not filter every pixel.
    h, w = sat.shape
    off = xp.arange(-grow, grow + 1)
    rows = xp.clip(ys[:, None, None] + off[None, :, None], 0, h - 1)
    cols = xp.clip(xs[:, None, None] + off[None, None, :], 0, w - 1)
    sat[rows, cols] = True
    return sat


def defect_mask(
    native: Array, *, hot_sigma: float = 6.0, column_sigma: float = 5.0, block: int = 64
) -> Array:
    """Hot pixels and bad (hot or cold) column segments from a native-pixel stack.

    Parameters
    ----------
    native : array, shape (N, H, W), float32
        Background-subtracted frames in their own (unaligned) pixels.
    hot_sigma, column_sigma : float, keyword-only
        Detection thresholds in robust sigma of the median image.
    block : int, keyword-only
        Length in rows of the column segments tested, so a column that goes
        bad from a charge trap upward is caught without masking all of it.

    Returns
    -------
    array of bool, shape (H, W)
    """
    xp = get_xp(native)
    ndi = get_ndimage(xp)
    med, _ = stack_median(native)
    sigma = mad_std(med)
    # Hot pixels: far above the mean of their 8 neighbours, which hold under a
    # third of the peak (a star's core holds about half, even when sharp).
    kernel = xp.ones((3, 3), dtype=xp.float32) / 8.0
    kernel[1, 1] = 0.0
    around = ndi.convolve(xp.nan_to_num(med), kernel, mode="nearest")
    hot = ((med - around) > hot_sigma * sigma) & (around < 0.3 * med)
    # Bad columns: the median of each column segment, compared with its row of segments.
    h, w = med.shape
    ny = -(-h // block)
    padded = xp.full((ny * block, w), xp.nan, dtype=xp.float32)
    padded[:h] = med
    seg, _ = stack_median(padded.reshape(ny, block, w).transpose(1, 0, 2))
    # Compare each segment with its neighbours along the row (not the whole
    # row), so vignetting, gradients and star halos are not taken for columns.
    local = ndi.median_filter(xp.nan_to_num(seg), size=(1, 15), mode="nearest")
    excess = seg - local
    seg_sigma = MAD_TO_SIGMA * xp.nanmedian(xp.abs(excess))
    bad_seg = xp.abs(excess) > column_sigma * max(float(seg_sigma), sigma / block**0.5)
    columns = xp.repeat(bad_seg, block, axis=0)[:h]
    columns = ndi.binary_dilation(columns, structure=xp.ones((1, 3), dtype=bool))
    return hot | columns


def frame_masks(frames: list[Frame], native: list[Array], xp: ModuleType) -> list[Array]:
    """Per-frame bad-pixel masks in each frame's own pixels.

    Combines no-data pixels, the file's own data-quality mask, saturated
    stars, and the sequence's own map of hot and warm pixels and bad columns
    (frames placed on the detector by their origin, whatever their sizes).

    Parameters
    ----------
    frames : list of Frame
    native : list of arrays, shape (H, W)
        Each frame's background-subtracted image in its own pixels.
    xp : module
    """

    def own_mask(k: int) -> Array:
        frame = frames[k]
        bad = ~xp.isfinite(native[k]) | saturation_mask(
            xp.asarray(frame.data), frame.saturation, xp
        )
        if frame.bad is not None:
            bad |= xp.asarray(frame.bad, dtype=bool)
        return bad

    masks = map_frames(own_mask, len(frames), xp)
    if len(frames) >= 3:
        corner = [f.origin for f in frames]
        y0, x0 = min(c[0] for c in corner), min(c[1] for c in corner)
        size = (
            max(c[0] - y0 + f.shape[0] for c, f in zip(corner, frames, strict=True)),
            max(c[1] - x0 + f.shape[1] for c, f in zip(corner, frames, strict=True)),
        )
        canvas = xp.full((len(frames), *size), xp.nan, dtype=xp.float32)
        windows = []
        for k, (frame, bad, image) in enumerate(zip(frames, masks, native, strict=True)):
            window = (
                slice(corner[k][0] - y0, corner[k][0] - y0 + frame.shape[0]),
                slice(corner[k][1] - x0, corner[k][1] - x0 + frame.shape[1]),
            )
            canvas[(k, *window)] = xp.where(bad, xp.nan, image)
            windows.append(window)
        defects = defect_mask(canvas)
        masks = [m | defects[w] for m, w in zip(masks, windows, strict=True)]
    return masks
