"""Cubic B-spline resampling of a frame onto the reference grid, compiled (NumPy only).

The CPU twin of ``scipy.ndimage.map_coordinates(order=3, mode="constant")``,
which the CuPy path calls: the same prefilter (Unser's recursive filter,
"mirror" edges, here in float32 and without the GIL) and the same 4 x 4
evaluation, in one pass that also reads where each output pixel falls from a
`Registration`'s coarse map and carries the bad-pixel mask along bilinearly.
SciPy's version makes a float64 coefficient image and two full-size
coordinate arrays per frame and holds one core.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .kernels import FAST_MATH

__all__ = ["spline_coefficients", "spline_resample"]

#: The cubic B-spline's pole, and how many of its powers start a line's filter.
_POLE = math.sqrt(3.0) - 2.0
_POLE_TERMS = math.ceil(math.log(1e-9) / math.log(abs(_POLE)))


@numba.njit(cache=True, nogil=True)
def _spline_columns(c, pole, terms):  # pragma: no cover - compiled
    """Cubic B-spline coefficients along axis 0, in place: whole rows at a time (vectorised).

    The causal and anticausal recursions of Unser's filter with the gain 6
    and scipy's "mirror" start (the image reflected about its edge pixels).
    """
    n, w = c.shape
    if n < 2:  # a single sample is its own coefficient
        return
    gain = np.float32((1 - pole) * (1 - 1 / pole))
    for i in range(n):
        for x in range(w):
            c[i, x] *= gain
    first = np.zeros(w, dtype=np.float64)
    zk = 1.0
    for k in range(terms):  # only called on columns longer than ``terms``
        for x in range(w):
            first[x] += zk * c[k, x]
        zk *= pole
    for x in range(w):
        c[0, x] = first[x]
    for i in range(1, n):
        for x in range(w):
            c[i, x] += pole * c[i - 1, x]
    for x in range(w):
        c[n - 1, x] = (pole / (pole * pole - 1)) * (pole * c[n - 2, x] + c[n - 1, x])
    for i in range(n - 2, -1, -1):
        for x in range(w):
            c[i, x] = pole * (c[i + 1, x] - c[i, x])


@numba.njit(cache=True, nogil=True)
def _spline_rows(c, pole, terms):  # pragma: no cover - compiled
    """Cubic B-spline coefficients along axis 1, in place, one row at a time."""
    h, n = c.shape
    if n < 2:
        return
    gain = (1 - pole) * (1 - 1 / pole)
    line = np.empty(n, dtype=np.float64)
    for y in range(h):
        for i in range(n):
            line[i] = gain * c[y, i]
        if n > terms:  # the reflected line's tail is below float precision
            first, zk = 0.0, 1.0
            for k in range(terms):
                first += zk * line[k]
                zk *= pole
        else:  # short line: the mirror sum in closed form, as scipy's
            zn1 = pole ** (n - 1)
            first, zk = line[0] + zn1 * line[n - 1], pole
            for i in range(1, n - 1):
                first += zk * (line[i] + zn1 * line[n - 1 - i])
                zk *= pole
            first /= 1 - zn1 * zn1
        line[0] = first
        for i in range(1, n):
            line[i] += pole * line[i - 1]
        line[n - 1] = (pole / (pole * pole - 1)) * (pole * line[n - 2] + line[n - 1])
        for i in range(n - 2, -1, -1):
            line[i] = pole * (line[i + 1] - line[i])
        for i in range(n):
            c[y, i] = line[i]


def spline_coefficients(image: np.ndarray) -> np.ndarray:
    """Cubic B-spline coefficients of an image, as ``scipy.ndimage.spline_filter(mode="mirror")``.

    In float32 (scipy works in float64: the two agree to ~1e-6 of the image's range).
    """
    coeffs = np.array(image, dtype=np.float32, order="C", copy=True)
    if coeffs.shape[0] > _POLE_TERMS:
        _spline_columns(coeffs, _POLE, _POLE_TERMS)
    else:  # a few rows: filter the columns as rows, with the exact start
        coeffs = np.ascontiguousarray(coeffs.T)
        _spline_rows(coeffs, _POLE, _POLE_TERMS)
        coeffs = np.ascontiguousarray(coeffs.T)
    _spline_rows(coeffs, _POLE, _POLE_TERMS)
    return coeffs


def _cell_weights(grid: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For pixels ``0..n-1``: the grid interval each falls in, and its fraction across it."""
    pos = np.arange(n, dtype=np.float64)
    cell = np.clip(np.searchsorted(grid, pos, side="right") - 1, 0, max(grid.size - 2, 0))
    span = np.diff(grid)[np.minimum(cell, grid.size - 2)] if grid.size > 1 else np.ones(n)
    frac = (pos - grid[cell]) / span if grid.size > 1 else np.zeros(n)
    return cell.astype(np.int64), frac


@numba.njit(cache=True, nogil=True, inline="always")
def _mirror(i, n):  # pragma: no cover - compiled
    """Index ``i`` reflected about the edge pixels (scipy's "mirror")."""
    if n == 1:
        return 0
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


@numba.njit(cache=True, nogil=True, inline="always")
def _bspline_weights(t, out):  # pragma: no cover - compiled
    """Cubic B-spline weights of taps -1..2 for a point ``t`` (0..1) past tap 0."""
    u = 1.0 - t
    out[0] = u * u * u / 6.0
    out[1] = (4.0 - 6.0 * t * t + 3.0 * t * t * t) / 6.0
    out[2] = (1.0 + 3.0 * t + 3.0 * t * t - 3.0 * t * t * t) / 6.0
    out[3] = t * t * t / 6.0


@numba.njit(cache=True, nogil=True, fastmath=FAST_MATH)
def _spline_rows_at(
    coeffs, bad, cell_y, frac_y, cell_x, frac_x, map_y, map_x, out, out_bad
):  # pragma: no cover - compiled
    h, w = coeffs.shape
    wy = np.empty(4, dtype=np.float64)
    wx = np.empty(4, dtype=np.float64)
    last_y, last_x = map_y.shape[0] - 1, map_y.shape[1] - 1
    for r in range(out.shape[0]):
        gy, ty = cell_y[r], frac_y[r]
        gy1 = min(gy + 1, last_y)
        for c in range(out.shape[1]):
            # Where the output pixel falls in the frame: the coarse map, bilinearly.
            gx, tx = cell_x[c], frac_x[c]
            gx1 = min(gx + 1, last_x)
            y = (1 - ty) * ((1 - tx) * map_y[gy, gx] + tx * map_y[gy, gx1]) + ty * (
                (1 - tx) * map_y[gy1, gx] + tx * map_y[gy1, gx1]
            )
            x = (1 - ty) * ((1 - tx) * map_x[gy, gx] + tx * map_x[gy, gx1]) + ty * (
                (1 - tx) * map_x[gy1, gx] + tx * map_x[gy1, gx1]
            )
            # Outside the frame (or NaN) is no data, as scipy's mode="constant".
            if not (y >= 0.0 and y <= h - 1 and x >= 0.0 and x <= w - 1):
                out[r, c] = np.nan
                out_bad[r, c] = True
                continue
            iy, ix = int(y), int(x)
            fy, fx = y - iy, x - ix
            _bspline_weights(fy, wy)
            _bspline_weights(fx, wx)
            acc = 0.0
            for a in range(4):
                yy = _mirror(iy - 1 + a, h)
                row = 0.0
                for b in range(4):
                    row += wx[b] * coeffs[yy, _mirror(ix - 1 + b, w)]
                acc += wy[a] * row
            # The mask moves bilinearly: bad where a bad pixel weighs > 1%.
            iy1, ix1 = min(iy + 1, h - 1), min(ix + 1, w - 1)
            moved = (1 - fy) * ((1 - fx) * bad[iy, ix] + fx * bad[iy, ix1]) + fy * (
                (1 - fx) * bad[iy1, ix] + fx * bad[iy1, ix1]
            )
            is_bad = moved > 0.01 or not math.isfinite(acc)
            out_bad[r, c] = is_bad
            out[r, c] = np.nan if is_bad else acc


def spline_resample(
    image: np.ndarray,
    bad: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    maps: tuple[np.ndarray, np.ndarray],
    shape: tuple[int, int],
    *,
    fill: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``image`` onto a grid by cubic B-spline interpolation, carrying its mask.

    The same interpolation as ``scipy.ndimage.map_coordinates(order=3,
    mode="constant")`` (the CuPy path), compiled: the spline prefilter in
    float32 and one pass that evaluates the spline.

    Where each output pixel falls in ``image`` is interpolated bilinearly,
    inline, from a coarse map (a `Registration`'s): exact for an affine
    mapping and within a few thousandths of a pixel of the map's spline for a
    distorted one, and no full-size coordinate arrays are made.

    Parameters
    ----------
    image : ndarray, shape (h, w)
    bad : ndarray of bool, shape (h, w)
        True where the image has no data; such pixels count as ``fill`` in the
        kernel, and the output is bad wherever one weighs over 1% bilinearly.
    grid : (grid_y, grid_x)
        Increasing output rows and columns where the map is given.
    maps : (map_y, map_x), shape (grid_y.size, grid_x.size) each
        ``image`` pixel ``(y, x)`` (0-based) of each grid point.
    shape : (H, W)
        Output shape.
    fill : float, keyword-only
        Stand-in value of bad pixels (the sky), so they do not ring.

    Returns
    -------
    out : ndarray, shape (H, W), float32
        NaN where bad.
    out_bad : ndarray of bool, shape (H, W)
    """
    coeffs = spline_coefficients(np.where(bad, np.float32(fill), image))
    cell_y, frac_y = _cell_weights(np.asarray(grid[0], dtype=np.float64), shape[0])
    cell_x, frac_x = _cell_weights(np.asarray(grid[1], dtype=np.float64), shape[1])
    out = np.empty(shape, dtype=np.float32)
    out_bad = np.empty(shape, dtype=bool)
    _spline_rows_at(
        coeffs,
        np.ascontiguousarray(bad, dtype=np.uint8),
        cell_y,
        frac_y,
        cell_x,
        frac_x,
        np.ascontiguousarray(maps[0], dtype=np.float64),
        np.ascontiguousarray(maps[1], dtype=np.float64),
        out,
        out_bad,
    )
    return out, out_bad
