"""Robust statistics on images and image stacks, written once for NumPy and CuPy.

``xp.nanmedian`` over a stack is slow on NumPy (it loops in Python over
pixels with NaN); sorting along the stack axis, where NaN sorts last, gives
the same answer about ten times faster and runs unchanged on CuPy.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

from . import kernels
from .backend import Array, get_ndimage, get_xp

__all__ = ["box_background", "local_maxima", "mad_std", "stack_mean", "stack_median", "windows"]

MAD_TO_SIGMA = 1.4826


def stack_median(stack: Array) -> tuple[Array, Array]:
    """Median over axis 0 of an (N, H, W) stack, ignoring NaN.

    Returns
    -------
    median : array, shape (H, W)
        NaN where no frame has data.
    count : array of int, shape (H, W)
        Number of frames with data at each pixel.
    """
    xp = get_xp(stack)
    if xp is np:  # the sort below, compiled: 10-20x less CPU (detectors.kernels)
        return kernels.stack_median(stack)
    ordered = xp.sort(stack, axis=0)
    count = xp.sum(xp.isfinite(stack), axis=0)
    lo = xp.clip((count - 1) // 2, 0, None)[None]
    hi = xp.clip(count // 2, 0, None)[None]
    med = 0.5 * (
        xp.take_along_axis(ordered, lo, axis=0)[0] + xp.take_along_axis(ordered, hi, axis=0)[0]
    )
    return xp.where(count > 0, med, xp.nan).astype(xp.float32), count


def stack_mean(stack: Array) -> Array:
    """Mean over axis 0 of an (N, H, W) stack ignoring NaN, as ``xp.nanmean`` (NaN where none)."""
    xp = get_xp(stack)
    if xp is np and stack.dtype == np.float32:  # one pass, no NaN-free copy (detectors.kernels)
        return kernels.stack_mean(stack)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels no frame covers
        return xp.nanmean(stack, axis=0)


def mad_std(values: Array) -> float:
    """Robust standard deviation (1.4826 x median absolute deviation) of finite values."""
    xp = get_xp(values)
    if xp is np and values.dtype == np.float32:  # the same medians, compiled (detectors.kernels)
        return float(MAD_TO_SIGMA * kernels.median_deviation(values))
    v = values[xp.isfinite(values)]
    if v.size == 0:
        return float("nan")
    return float(MAD_TO_SIGMA * xp.median(xp.abs(v - xp.median(v))))


def _coarse(image: Array, box: int, xp: ModuleType) -> tuple[Array, Array]:
    """Median and robust sigma of each ``box`` x ``box`` cell (NaN ignored).

    Every other pixel of a cell in each direction is enough for a robust
    median and four times cheaper to sort.
    """
    if xp is np:  # the same statistics cell by cell, compiled (detectors.kernels)
        return kernels.cell_statistics(image, box)
    h, w = image.shape
    ny, nx = -(-h // box), -(-w // box)
    padded = xp.full((ny * box, nx * box), xp.nan, dtype=xp.float32)
    padded[:h, :w] = image
    half = box // 2
    cells = padded[::2, ::2].reshape(ny, half, nx, half).transpose(1, 3, 0, 2)
    cells = cells.reshape(half * half, ny, nx)
    med, _ = stack_median(cells)
    dev, _ = stack_median(xp.abs(cells - med[None]))
    # Clip once at 3 sigma so stars and cosmic rays in a cell do not bias it.
    sig = MAD_TO_SIGMA * dev
    clipped = xp.where(xp.abs(cells - med[None]) > 3 * sig[None], xp.nan, cells)
    med, count = stack_median(clipped)
    dev, _ = stack_median(xp.abs(clipped - med[None]))
    sparse = count < 0.3 * half * half
    med = xp.where(sparse, xp.nan, med)
    sig = xp.where(sparse, xp.nan, MAD_TO_SIGMA * dev)
    return med, sig


def _fill_nan(coarse: Array, xp: ModuleType) -> Array:
    """Give NaN cells (blank regions) the value of the nearest good cell."""
    good = xp.isfinite(coarse)
    if bool(good.all()) or not bool(good.any()):
        return xp.nan_to_num(coarse)
    nearest = get_ndimage(xp).distance_transform_edt(
        ~good, return_distances=False, return_indices=True
    )
    return coarse[tuple(nearest)]


def _interp_rows(n: int, cells: int, box: int, xp: ModuleType) -> tuple[Array, Array, Array]:
    """Lower cell, upper cell and upper weight that interpolate cell centres to ``n`` pixels."""
    pos = np.clip((np.arange(n) + 0.5) / box - 0.5, 0, cells - 1)
    lo = np.minimum(np.floor(pos).astype(int), max(cells - 2, 0))
    hi = np.minimum(lo + 1, cells - 1)
    return xp.asarray(lo), xp.asarray(hi), xp.asarray((pos - lo).astype(np.float32))


def _bilinear(coarse: Array, shape: tuple[int, int], box: int, xp: ModuleType) -> Array:
    """Cell values interpolated bilinearly to every pixel, one axis at a time.

    Each pixel mixes two cells per axis, so two gathers and a blend per axis
    cost far less than a dense interpolation-matrix product.
    """
    across = _interp_rows(shape[1], coarse.shape[1], box, xp)
    down = _interp_rows(shape[0], coarse.shape[0], box, xp)
    if xp is np:  # one pass instead of six whole-image temporaries (detectors.kernels)
        return kernels.bilinear(coarse, down, across)
    lo, hi, f = across
    rows = coarse[:, lo] * (1 - f) + coarse[:, hi] * f
    lo, hi, f = down
    return (rows[lo] * (1 - f)[:, None] + rows[hi] * f[:, None]).astype(xp.float32)


def box_background(image: Array, *, box: int = 64) -> tuple[Array, Array]:
    """Smooth background and noise maps, as SExtractor and sep build them.

    The image is cut into ``box``-pixel cells; each cell's sigma-clipped
    median and robust sigma are median-filtered over 3x3 cells and
    interpolated bilinearly back to full resolution.

    Parameters
    ----------
    image : array, shape (H, W), float32
        NaN where no data.
    box : int, keyword-only
        Cell size in pixels (even); larger than a star, smaller than sky gradients.

    Returns
    -------
    background, rms : arrays, shape (H, W), float32
    """
    xp = get_xp(image)
    ndi = get_ndimage(xp)
    med, sig = _coarse(image, box, xp)
    out = []
    for coarse in (med, sig):
        smooth = ndi.median_filter(_fill_nan(coarse, xp), size=3, mode="nearest")
        out.append(_bilinear(smooth.astype(xp.float32), image.shape, box, xp))
    return out[0], out[1]


def windows(image: np.ndarray, y: np.ndarray, x: np.ndarray, half: int) -> np.ndarray:
    """(M, 2h+1, 2h+1) windows around each pixel, edges padded with 0."""
    padded = np.pad(image, half)
    off = np.arange(-half, half + 1)
    return padded[(y + half)[:, None, None] + off[None, :, None], (x + half)[:, None, None] + off]


def local_maxima(
    snr: np.ndarray, y: np.ndarray, x: np.ndarray, half: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep pixels that are the maximum of their window (first one wins ties).

    Testing only pixels already above threshold is much cheaper than a
    full-image maximum filter, since they are a tiny fraction of the image.
    """
    if y.size == 0:
        return y, x
    win = windows(snr, y, x, half)
    is_max = snr[y, x] >= win.reshape(y.size, -1).max(axis=1)
    return y[is_max], x[is_max]
