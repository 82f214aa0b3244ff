"""Compiled CPU kernels for the per-frame path's hot loops (NumPy arrays only).

The per-frame path is written once against ``xp``; on NumPy a few of its
steps are memory-bound chains of whole-image temporaries (a sort along the
stack axis, filters computed in float64, a dozen temporaries for one weight map) that cost more
than the arithmetic. These numba kernels do the same work in one pass, in
float32, and release the GIL so that ``backend.map_frames`` threads (or the
row bands here) keep both cores busy. The callers keep their xp code for
CuPy, and the tests compare each kernel with it. The resampler is in
`detectors.spline`, sep's windowed centroid and aperture sum in
`detectors.aperture`. The medians are radix selections, which do not
mispredict a branch per value as comparisons do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

__all__ = [
    "bilinear",
    "cell_statistics",
    "gaussian_filter",
    "inverse_variance",
    "median_deviation",
    "paste_tiles",
    "stack_mean",
    "stack_median",
]

#: Median absolute deviation to sigma for a normal distribution (as ``stats``).
MAD_TO_SIGMA = 1.4826
#: Fast-math flags without "no NaN" and "no inf": the kernels test for NaN (no data).
FAST_MATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
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
    edges = [int(e) for e in np.linspace(0, rows, 4 * cores + 1)]
    with ThreadPoolExecutor(max_workers=cores) as pool:
        list(pool.map(lambda k: fn(edges[k], edges[k + 1]), range(len(edges) - 1)))


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
def _mean_rows(stack, mean, y0, y1):  # pragma: no cover - compiled
    """``np.nanmean`` over axis 0: float32 sums frame by frame, divided in float64, as NumPy."""
    n, _, w = stack.shape
    total = np.empty(w, dtype=np.float32)
    count = np.empty(w, dtype=np.int64)
    for y in range(y0, y1):
        total[:] = 0.0
        count[:] = 0
        for i in range(n):
            for x in range(w):
                v = stack[i, y, x]
                if v == v:
                    total[x] += v
                    count[x] += 1
        for x in range(w):
            mean[y, x] = np.float64(total[x]) / count[x] if count[x] else np.nan


def stack_mean(stack: np.ndarray) -> np.ndarray:
    """``np.nanmean(stack, axis=0)`` of an (N, H, W) float32 stack, the same values.

    NumPy replaces NaN by zero in a copy of the stack, then sums and counts
    it; here each row is summed in one pass, on every core.
    """
    stack = np.ascontiguousarray(stack, dtype=np.float32)
    _, h, w = stack.shape
    mean = np.empty((h, w), dtype=np.float32)
    _bands(lambda y0, y1: _mean_rows(stack, mean, y0, y1), h, stack.size)
    return mean


@numba.njit(cache=True, nogil=True, inline="always")
def _order_key(bits):  # pragma: no cover - compiled
    """A float32's bits as a uint32 that orders as the floats do (negatives flipped whole)."""
    return bits ^ (np.uint32(0xFFFFFFFF) if bits >> np.uint32(31) else np.uint32(0x80000000))


@numba.njit(cache=True, nogil=True)
def _median(values, keys):  # pragma: no cover - compiled
    """Median of 1-D float32 ``values``, (lower + upper) / 2 as ``stack_median``.

    A radix selection of the lower middle, a byte of its order key at a
    time (a histogram, then a branch-free compaction into ``keys``, scratch
    of at least ``values.size``). Selection by comparisons mispredicts a
    branch on about every other value of noisy data, and was 3x slower.
    """
    k = values.size
    bits = values.view(np.uint32)
    for i in range(k):
        keys[i] = _order_key(bits[i])
    rank, n = (k - 1) // 2, k
    hist = np.empty(256, dtype=np.int64)
    for shift in (24, 16, 8, 0):
        hist[:] = 0
        for i in range(n):
            hist[(keys[i] >> np.uint32(shift)) & np.uint32(255)] += 1
        b = 0
        while rank >= hist[b]:
            rank -= hist[b]
            b += 1
        m = 0
        for i in range(n):
            keys[m] = keys[i]
            m += ((keys[i] >> np.uint32(shift)) & np.uint32(255)) == b
        n = m
    key = keys[0]
    keys[0] = key ^ (np.uint32(0x80000000) if key >> np.uint32(31) else np.uint32(0xFFFFFFFF))
    lower = keys[:1].view(np.float32)[0]
    if k % 2:
        return lower
    # The upper middle: the lower again if it fills rank k // 2 too, else the next value up.
    at_most, above = 0, np.float32(np.inf)
    for i in range(k):
        v = values[i]
        at_most += v <= lower
        above = min(above, v) if v > lower else above
    return np.float32(0.5) * (lower + (lower if at_most > k // 2 else above))


@numba.njit(cache=True, nogil=True)
def _deviation(image, values, keys):  # pragma: no cover - compiled
    n = 0
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            v = image[y, x]
            if np.isfinite(v):
                values[n] = v
                n += 1
    if n == 0:
        return np.float32(np.nan)
    m = _median(values[:n], keys)
    for i in range(n):
        values[i] = abs(values[i] - m)
    return _median(values[:n], keys)


def median_deviation(image: np.ndarray) -> np.float32:
    """Median absolute deviation of the finite values of a float32 image (NaN if none).

    ``np.median(np.abs(v - np.median(v)))`` of ``v = image[np.isfinite(image)]``,
    the same value, with both medians by radix selection: 3x faster on a
    2048^2 image, whose MAD the per-frame path takes a few dozen times.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        image = image.reshape(1, -1)
    values, keys = np.empty(image.size, dtype=np.float32), np.empty(image.size, dtype=np.uint32)
    return np.float32(_deviation(image, values, keys))  # numba returns a Python float


@numba.njit(cache=True, nogil=True, inline="always")
def _median_sigma(values, dev, keys):  # pragma: no cover - compiled
    """Median of ``values`` and their robust sigma (MAD, in ``dev``'s first slots)."""
    m = _median(values, keys)
    for i in range(values.size):
        dev[i] = abs(values[i] - m)
    return m, np.float32(MAD_TO_SIGMA) * _median(dev[: values.size], keys)


@numba.njit(cache=True, nogil=True)
def _cells(image, box, med, sig, keep):  # pragma: no cover - compiled
    h, w = image.shape
    ny, nx = med.shape
    half = box // 2
    values = np.empty(half * half, dtype=np.float32)
    dev = np.empty(half * half, dtype=np.float32)
    keys = np.empty(half * half, dtype=np.uint32)
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
            m, s = _median_sigma(values[:k], dev, keys)
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
            med[cy, cx], sig[cy, cx] = _median_sigma(values[:n], dev, keys)


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


@numba.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def _weights(diff, rms, star_var, poisson, inv_scale, weighted, inv):  # pragma: no cover
    h, w = diff.shape
    for y in range(h):
        for x in range(w):
            var = rms[y, x] * rms[y, x] + star_var[y, x] + poisson[y, x] * inv_scale
            d = diff[y, x]
            if np.isfinite(d) and var > 0:
                iv = np.float32(1.0) / var
                inv[y, x] = iv
                weighted[y, x] = d * iv
            else:
                inv[y, x] = 0.0
                weighted[y, x] = 0.0


def inverse_variance(
    diff: np.ndarray,
    rms: np.ndarray,
    star_var: np.ndarray,
    poisson: np.ndarray | None,
    *,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``diff / var`` and ``1 / var`` (0 where no data) with ``var = rms^2 + star_var + poisson / scale``.

    The difference image's per-pixel weights, in one pass instead of a
    dozen whole-image temporaries (``detectors.difference``).
    """
    inv_scale = np.float32(1.0 / scale)
    if poisson is None:  # no Poisson term: any finite map times 0
        poisson, inv_scale = star_var, np.float32(0.0)
    weighted = np.empty(diff.shape, dtype=np.float32)
    inv = np.empty(diff.shape, dtype=np.float32)
    _weights(diff, rms, star_var, poisson, inv_scale, weighted, inv)
    return weighted, inv


@numba.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def _bilinear_rows(coarse, lo_y, hi_y, f_y, lo_x, hi_x, f_x, out):  # pragma: no cover
    """Each cell row blended across once, then every pixel row from two of those."""
    across = np.empty((coarse.shape[0], out.shape[1]))
    for r in range(coarse.shape[0]):
        for x in range(out.shape[1]):
            u = f_x[x]
            across[r, x] = coarse[r, lo_x[x]] * (1 - u) + coarse[r, hi_x[x]] * u
    for y in range(out.shape[0]):
        a, b, t = lo_y[y], hi_y[y], f_y[y]
        for x in range(out.shape[1]):
            out[y, x] = across[a, x] * (1 - t) + across[b, x] * t


def bilinear(
    coarse: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    cols: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Cell values blended to every pixel: ``rows``/``cols`` are (lower cell, upper cell, weight)."""
    out = np.empty((rows[0].size, cols[0].size), dtype=np.float32)
    lo_y, hi_y, f_y = rows
    lo_x, hi_x, f_x = cols
    coarse = np.ascontiguousarray(coarse, dtype=np.float32)
    _bilinear_rows(coarse, lo_y, hi_y, f_y, lo_x, hi_x, f_x, out)
    return out


def _gaussian_weights(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's Gaussian kernel: radius ``int(truncate * sigma + 0.5)``, sum 1."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (x / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


@numba.njit(cache=True, nogil=True, fastmath=FAST_MATH)
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


@numba.njit(cache=True, nogil=True)
def _paste(full, tiles, rows, cols, size):  # pragma: no cover - compiled
    for k in range(rows.size):
        y0, x0 = rows[k] * size, cols[k] * size
        for f in range(full.shape[0]):
            for dy in range(size):
                for dx in range(size):
                    full[f, y0 + dy, x0 + dx] = tiles[k, f, dy, dx]


def paste_tiles(full: np.ndarray, tiles: np.ndarray, index: np.ndarray, size: int) -> None:
    """Copy ``tiles`` (K, N, size, size) into ``full`` (N, rows*size, cols*size) in place.

    ``index`` (K, 2) holds each tile's row and column. NumPy's fancy-index
    assignment through a tiled view does the same in many small strided
    copies, ten times slower on a 2048^2 work file.
    """
    index = np.ascontiguousarray(index, dtype=np.int64)
    _paste(full, np.ascontiguousarray(tiles), index[:, 0].copy(), index[:, 1].copy(), size)
