"""Compiled CPU kernels for the per-frame path's hot loops (NumPy arrays only).

The per-frame path is written once against ``xp``; on NumPy a few of its
steps are memory-bound chains of whole-image temporaries (a sort along the
stack axis, a spline prefilter, filters computed in float64) that cost more
than the arithmetic. These numba kernels do the same work in one pass, in
float32, and release the GIL so that ``backend.map_frames`` threads (or the
row bands here) keep both cores busy. The callers keep their xp code for
CuPy, and the tests compare each kernel with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

__all__ = [
    "LANCZOS_STEPS",
    "cell_statistics",
    "gaussian_filter",
    "lanczos_resample",
    "stack_median",
]

#: Median absolute deviation to sigma for a normal distribution (as ``stats``).
MAD_TO_SIGMA = 1.4826
#: Sub-pixel steps of the tabulated Lanczos-3 weights: positions are rounded
#: to 1/2048 pixel (0.0002 px RMS), far below any centroid error.
LANCZOS_STEPS = 2048
#: Pixels above which a whole-stack kernel is split into row bands over threads.
_PARALLEL_PIXELS = 1 << 21
#: Largest stack whose median is taken by ranks (N^2 comparisons), not by sorting.
_RANKED_MAX = 24


def _bands(fn: Callable[[int, int], None], rows: int, work: int) -> None:
    """``fn(y0, y1)`` over bands of ``rows``, on every core when ``work`` is large."""
    cores = os.cpu_count() or 1
    if work < _PARALLEL_PIXELS or cores < 2 or rows < 2 * cores:
        fn(0, rows)
        return
    edges = np.linspace(0, rows, 4 * cores + 1).astype(int)
    with ThreadPoolExecutor(max_workers=cores) as pool:
        list(pool.map(lambda k: fn(edges[k], edges[k + 1]), range(edges.size - 1)))


@numba.njit(cache=True, nogil=True, fastmath=False)
def _median_rows_ranked(stack, med, count, y0, y1):  # pragma: no cover - compiled
    """Few values per pixel: each value's rank by comparisons, branch-free over a row.

    NaN counts as +inf, so it ranks after every value; ties rank by index.
    """
    n, _, w = stack.shape
    vals = np.empty((n, w), dtype=np.float32)
    rank = np.empty(w, dtype=np.int32)
    k = np.empty(w, dtype=np.int32)
    lo = np.empty(w, dtype=np.float32)
    hi = np.empty(w, dtype=np.float32)
    for y in range(y0, y1):
        for x in range(w):
            k[x] = 0
            lo[x] = 0.0
            hi[x] = 0.0
        for i in range(n):
            for x in range(w):
                v = stack[i, y, x]
                good = v == v
                vals[i, x] = v if good else np.inf
                k[x] += good
        for i in range(n):
            for x in range(w):
                rank[x] = 0
            for j in range(i):
                for x in range(w):
                    rank[x] += vals[j, x] <= vals[i, x]
            for j in range(i + 1, n):
                for x in range(w):
                    rank[x] += vals[j, x] < vals[i, x]
            for x in range(w):
                v = vals[i, x]
                lo[x] += v if rank[x] == (k[x] - 1) // 2 else np.float32(0.0)
                hi[x] += v if rank[x] == k[x] // 2 else np.float32(0.0)
        for x in range(w):
            count[y, x] = k[x]
            med[y, x] = np.float32(0.5) * (lo[x] + hi[x]) if k[x] > 0 else np.nan


@numba.njit(cache=True, nogil=True)
def _median_rows_sorted(stack, med, count, y0, y1):  # pragma: no cover - compiled
    """Many values per pixel (cells of an image): sort each pixel's finite values."""
    n, _, w = stack.shape
    buf = np.empty(n, dtype=np.float32)
    for y in range(y0, y1):
        for x in range(w):
            k = 0
            for i in range(n):
                v = stack[i, y, x]
                if v == v:
                    buf[k] = v
                    k += 1
            count[y, x] = k
            if k == 0:
                med[y, x] = np.nan
                continue
            ordered = np.sort(buf[:k])
            med[y, x] = np.float32(0.5) * (ordered[(k - 1) // 2] + ordered[k // 2])


def stack_median(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median over axis 0 of an (N, H, W) float32 stack ignoring NaN, and the count.

    The same answer as :func:`detectors.stats.stack_median`'s sort along the
    stack, which on NumPy is strided and branchy: for a few frames each
    value's rank is counted branch-free along a row (vectorised), for many
    each pixel's values are sorted in a small buffer.
    """
    stack = np.ascontiguousarray(stack, dtype=np.float32)
    n, h, w = stack.shape
    med = np.empty((h, w), dtype=np.float32)
    count = np.empty((h, w), dtype=np.int64)
    kernel = _median_rows_ranked if n <= _RANKED_MAX else _median_rows_sorted
    _bands(lambda y0, y1: kernel(stack, med, count, y0, y1), h, stack.size)
    return med, count


@numba.njit(cache=True, nogil=True)
def _median_inplace(values):  # pragma: no cover - compiled
    """Median of a 1-D float32 array, (lower + upper) / 2 as ``stack_median``; reorders it."""
    k = values.size
    lo = np.partition(values, (k - 1) // 2)[(k - 1) // 2]
    hi = np.partition(values, k // 2)[k // 2]
    return np.float32(0.5) * (lo + hi)


@numba.njit(cache=True, nogil=True)
def _cells(image, box, med, sig, keep):  # pragma: no cover - compiled
    h, w = image.shape
    ny, nx = med.shape
    half = box // 2
    values = np.empty(half * half, dtype=np.float32)
    dev = np.empty(half * half, dtype=np.float32)
    for cy in range(ny):
        for cx in range(nx):
            k = 0
            for y in range(cy * box, min(cy * box + box, h), 2):
                for x in range(cx * box, min(cx * box + box, w), 2):
                    v = image[y, x]
                    if v == v:
                        values[k] = v
                        k += 1
            if k == 0:
                med[cy, cx] = np.nan
                sig[cy, cx] = np.nan
                continue
            m = _median_inplace(values[:k].copy())
            for i in range(k):
                dev[i] = abs(values[i] - m)
            s = np.float32(MAD_TO_SIGMA) * _median_inplace(dev[:k])
            # Clip once at 3 sigma so stars and cosmic rays in a cell do not bias it.
            n = 0
            for i in range(k):
                if abs(values[i] - m) <= 3 * s:
                    values[n] = values[i]
                    n += 1
            if n < keep or n == 0:
                med[cy, cx] = np.nan
                sig[cy, cx] = np.nan
                continue
            m = _median_inplace(values[:n].copy())
            for i in range(n):
                dev[i] = abs(values[i] - m)
            med[cy, cx] = m
            sig[cy, cx] = np.float32(MAD_TO_SIGMA) * _median_inplace(dev[:n])


def cell_statistics(image: np.ndarray, box: int) -> tuple[np.ndarray, np.ndarray]:
    """Clipped median and robust sigma of each ``box`` x ``box`` cell, as ``stats._coarse``.

    Every other pixel of a cell in each direction is used; one 3-sigma clip;
    a cell with under 30% of its sampled pixels left is NaN.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    h, w = image.shape
    shape = (-(-h // box), -(-w // box))
    med = np.empty(shape, dtype=np.float32)
    sig = np.empty(shape, dtype=np.float32)
    half = box // 2
    _cells(image, box, med, sig, 0.3 * half * half)
    return med, sig


def _gaussian_weights(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's Gaussian kernel: radius ``int(truncate * sigma + 0.5)``, sum 1."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (x / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _gaussian_2d(image, weights, nearest, out):  # pragma: no cover - compiled
    """Separable correlation: columns then rows, each through a padded row buffer."""
    h, w = image.shape
    r = weights.size // 2
    tmp = np.empty(w, dtype=np.float32)
    buf = np.zeros(w + 2 * r, dtype=np.float32)
    for y in range(h):
        for x in range(w):
            tmp[x] = 0.0
        for k in range(weights.size):
            yy = y + k - r
            if yy < 0 or yy >= h:
                if not nearest:
                    continue
                yy = 0 if yy < 0 else h - 1
            wk = weights[k]
            for x in range(w):
                tmp[x] += wk * image[yy, x]
        for x in range(w):
            buf[r + x] = tmp[x]
        if nearest:
            for x in range(r):
                buf[x] = tmp[0]
                buf[r + w + x] = tmp[w - 1]
        for x in range(w):
            out[y, x] = 0.0
        for k in range(weights.size):
            wk = weights[k]
            for x in range(w):
                out[y, x] += wk * buf[x + k]


def gaussian_filter(
    image: np.ndarray, sigma: float, *, mode: str = "constant", truncate: float = 4.0
) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter`` of a 2-D image, in float32, one thread.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    sigma : float
    mode : {"constant", "nearest"}, keyword-only
        Outside the image: zero, or the nearest edge pixel.
    truncate : float, keyword-only
        Kernel radius in sigma, as scipy's.
    """
    if mode not in ("constant", "nearest"):
        raise ValueError(f"mode must be 'constant' or 'nearest', not {mode!r}")
    image = np.ascontiguousarray(image, dtype=np.float32)
    out = np.empty_like(image)
    _gaussian_2d(image, _gaussian_weights(sigma, truncate), mode == "nearest", out)
    return out


def _lanczos_table(steps: int) -> np.ndarray:
    """(steps + 1, 6) Lanczos-3 weights of taps -2..3 for fractional offsets 0..1, sum 1."""
    frac = np.arange(steps + 1, dtype=np.float64) / steps
    t = frac[:, None] - np.arange(-2, 4)[None, :]
    table = np.sinc(t) * np.sinc(t / 3.0)
    return (table / table.sum(axis=1, keepdims=True)).astype(np.float32)


_LANCZOS = _lanczos_table(LANCZOS_STEPS)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _lanczos_rows(
    filled, bad, ys, xs, table, out, out_bad, y0, y1
):  # pragma: no cover - compiled
    h, w = filled.shape
    steps = table.shape[0] - 1
    for r in range(y0, y1):
        for c in range(ys.shape[1]):
            y, x = ys[r, c], xs[r, c]
            # Outside the frame (or NaN) is no data, as scipy's mode="constant".
            if not (y >= 0.0 and y <= h - 1 and x >= 0.0 and x <= w - 1):
                out[r, c] = np.nan
                out_bad[r, c] = True
                continue
            iy, ix = int(y), int(x)
            fy, fx = y - iy, x - ix
            wy = table[int(fy * steps + 0.5)]
            wx = table[int(fx * steps + 0.5)]
            acc = np.float32(0.0)
            for a in range(6):
                yy = min(max(iy - 2 + a, 0), h - 1)
                row = np.float32(0.0)
                for b in range(6):
                    row += wx[b] * filled[yy, min(max(ix - 2 + b, 0), w - 1)]
                acc += wy[a] * row
            # The mask moves bilinearly: bad where a bad pixel weighs > 1%.
            iy1, ix1 = min(iy + 1, h - 1), min(ix + 1, w - 1)
            moved = (
                (1 - fy) * ((1 - fx) * bad[iy, ix] + fx * bad[iy, ix1])
                + fy * ((1 - fx) * bad[iy1, ix] + fx * bad[iy1, ix1])
            )
            is_bad = moved > 0.01 or not math.isfinite(acc)
            out_bad[r, c] = is_bad
            out[r, c] = np.nan if is_bad else acc


def lanczos_resample(
    image: np.ndarray, bad: np.ndarray, ys: np.ndarray, xs: np.ndarray, *, fill: float
) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``image`` at ``(ys, xs)`` with a Lanczos-3 kernel, carrying its mask.

    Parameters
    ----------
    image : ndarray, shape (h, w)
    bad : ndarray of bool, shape (h, w)
        True where the image has no data; such pixels count as ``fill`` in the
        kernel, and the output is bad wherever one weighs over 1% bilinearly.
    ys, xs : ndarray, shape (H, W)
        Where each output pixel falls in ``image`` (0-based pixels).
    fill : float, keyword-only
        Stand-in value of bad pixels (the sky), so they do not ring.

    Returns
    -------
    out : ndarray, shape (H, W), float32
        NaN where bad.
    out_bad : ndarray of bool, shape (H, W)
    """
    filled = np.where(bad, np.float32(fill), image).astype(np.float32, copy=False)
    ys = np.ascontiguousarray(ys, dtype=np.float32)
    xs = np.ascontiguousarray(xs, dtype=np.float32)
    out = np.empty(ys.shape, dtype=np.float32)
    out_bad = np.empty(ys.shape, dtype=bool)
    bad8 = np.ascontiguousarray(bad, dtype=np.uint8)
    _lanczos_rows(filled, bad8, ys, xs, _LANCZOS, out, out_bad, 0, ys.shape[0])
    return out, out_bad
