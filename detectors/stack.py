"""Shift-and-stack along a motion: sample each frame where the object is.

The matched-filter maps ``psi`` and ``phi`` add linearly over frames, so the
stacked flux and SNR of an object on a given path are sums of per-frame
samples at its predicted positions: ``sum(psi) / sum(phi)`` and
``sum(psi) / sqrt(sum(phi))`` (KBMOD's likelihood). Sampling is bilinear so
that a sub-pixel path is followed faithfully.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .backend import get_xp, to_numpy

__all__ = ["STACKERS", "Stacker", "best_motions", "sample_stack"]


def sample_stack(
    psi: object, phi: object, y: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples of ``psi[k]`` and ``phi[k]`` at ``(y[k], x[k])`` for every frame.

    Parameters
    ----------
    psi, phi : arrays, shape (N, H, W)
    y, x : ndarray, shape (N,)
        Position in each frame (pixels). Off-image positions give ``phi = 0``.

    Returns
    -------
    psi_k, phi_k : ndarray, shape (N,), float64
    """
    xp = get_xp(psi)
    n, h, w = psi.shape
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    x = np.clip(x, 0, w - 1.001)
    y = np.clip(y, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    k = np.arange(n)
    out = []
    for cube in (psi, phi):
        corners = [
            to_numpy(cube[xp.asarray(k), xp.asarray(y0 + dy), xp.asarray(x0 + dx)])
            for dy in (0, 1)
            for dx in (0, 1)
        ]
        val = (
            corners[0] * (1 - fx) * (1 - fy)
            + corners[1] * fx * (1 - fy)
            + corners[2] * (1 - fx) * fy
            + corners[3] * fx * fy
        )
        out.append(np.where(inside, val, 0.0).astype(np.float64))
    return out[0], out[1]


def _stack_xp(snr: object, shifts: np.ndarray, scale: np.ndarray, *, progress=None) -> object:
    """Best scaled sum over motions at every start pixel, with whole-image array operations.

    Parameters
    ----------
    snr : array, shape (N, H, W), float32
        Per-frame SNR maps (NumPy or CuPy).
    shifts : ndarray of int, shape (M, N, 2)
        Offsets ``(dy, dx)`` of each frame for each motion.
    scale : ndarray, shape (M,)
        Factor applied to each motion's sums (one over its noise) before the maximum.

    Returns
    -------
    array, shape (H, W), float32
        Largest scaled sum over the motions, per start pixel.
    """
    xp = get_xp(snr)
    _, h, w = snr.shape
    best = xp.full((h, w), -np.inf, dtype=xp.float32)
    acc = xp.empty((h, w), dtype=xp.float32)
    for m, offsets in enumerate(shifts):
        acc.fill(0.0)
        for k, (dy, dx) in enumerate(offsets):
            dy, dx = int(dy), int(dx)
            ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
            xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
            acc[yd, xd] += snr[k, ys, xs]
        acc *= float(scale[m])
        xp.maximum(best, acc, out=best)
        if progress and m % 256 == 0:
            progress(m + 1, len(shifts))
    if progress:
        progress(len(shifts), len(shifts))
    return best


#: Rows of start pixels sampled to measure each motion's noise.
NOISE_ROWS = 32


def _valid_starts(offsets: np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
    """Start pixels ``[y0, y1) x [x0, x1)`` whose whole trajectory stays on the image."""
    y0, x0 = np.maximum(-offsets.min(axis=0), 0)
    y1, x1 = np.array([h, w]) - np.maximum(offsets.max(axis=0), 0)
    return int(y0), int(y1), int(x0), int(x1)


def _noise_xp(snr: object, shifts: np.ndarray) -> np.ndarray:
    """Each motion's noise (see :class:`Stacker`) with whole-row array operations."""
    xp = get_xp(snr)
    n, h, w = snr.shape
    stride = max(1, h // NOISE_ROWS)
    limit = 5.0 * np.sqrt(n)
    out = np.full(len(shifts), np.sqrt(n))
    for m, offsets in enumerate(shifts):
        y0, y1, x0, x1 = _valid_starts(offsets, h, w)
        if y1 <= y0 or x1 <= x0:
            continue
        acc = 0.0
        for k, (dy, dx) in enumerate(offsets):
            acc = acc + snr[k, y0 + dy : y1 + dy : stride, x0 + dx : x1 + dx]
        acc = acc[xp.abs(acc) < limit]
        if acc.size >= 100:
            out[m] = float(xp.sqrt(xp.mean(acc * acc)))
    return out


def best_motions(
    snr: object, shifts: np.ndarray, scale: np.ndarray, y: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """For each start pixel ``(y[i], x[i])``, the index of the motion with the largest scaled sum.

    The stackers keep only the best value per pixel (which is what makes
    them fast); the few peaks worth a closer look get their motion here.
    """
    xp = get_xp(snr)
    n, h, w = snr.shape
    k = np.arange(n)[None, :]
    out = np.zeros(len(y), dtype=np.int64)
    for i, (yi, xi) in enumerate(zip(y, x, strict=True)):
        ys, xs = yi + shifts[:, :, 0], xi + shifts[:, :, 1]
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        values = to_numpy(
            snr[
                xp.asarray(np.broadcast_to(k, ys.shape)),
                xp.asarray(np.clip(ys, 0, h - 1)),
                xp.asarray(np.clip(xs, 0, w - 1)),
            ]
        )
        out[i] = int(np.argmax(np.where(inside, values, 0.0).sum(axis=1) * scale))
    return out


@dataclass(frozen=True)
class Stacker:
    """One implementation of the search's two whole-image passes.

    ``noise(snr, shifts)`` gives each motion's standard deviation of sums,
    measured on ``NOISE_ROWS`` rows of start pixels (sums beyond 5 sigma, which
    are objects, left out). The frames share one template, so their noise is
    correlated where a trajectory crosses the same sky twice: slow motions
    sum less noise than ``sqrt(N)`` (and partly subtract their objects), so
    each motion is judged against its own noise.
    ``search(snr, shifts, scale, progress=None)`` gives, per start pixel, the
    largest of the motions' sums times ``scale``.
    """

    noise: Callable[[object, np.ndarray], np.ndarray]
    search: Callable[..., object]


#: Implementations by name: ``xp`` runs on NumPy or CuPy; ``numba`` (when
#: installed) is compiled for the CPU and uses every core.
STACKERS = {"xp": Stacker(noise=_noise_xp, search=_stack_xp)}

try:
    import numba
except ImportError:  # the xp implementation covers the CPU too, only slower
    numba = None

if numba is not None:

    @numba.njit(fastmath=True, cache=True, nogil=True)
    def _stack_band(padded, shifts, scale, best, pad, y0, y1):  # pragma: no cover - compiled
        n = padded.shape[0]
        w = best.shape[1]
        acc = np.empty(w, dtype=np.float32)
        for y in range(y0, y1):
            for m in range(shifts.shape[0]):
                d = pad + shifts[m, 0, 1]
                row = padded[0, y + pad + shifts[m, 0, 0], d : d + w]
                for x in range(w):
                    acc[x] = row[x]
                for k in range(1, n):
                    d = pad + shifts[m, k, 1]
                    row = padded[k, y + pad + shifts[m, k, 0], d : d + w]
                    for x in range(w):
                        acc[x] += row[x]
                f = scale[m]
                for x in range(w):
                    a = acc[x] * f
                    b = best[y, x]
                    best[y, x] = a if a > b else b

    @numba.njit(fastmath=True, cache=True, nogil=True)
    def _noise_one(padded, offsets, pad, h, w, stride, limit):  # pragma: no cover - compiled
        n = padded.shape[0]
        y0 = max(0, -offsets[:, 0].min())
        y1 = h - max(0, offsets[:, 0].max())
        x0 = max(0, -offsets[:, 1].min())
        x1 = w - max(0, offsets[:, 1].max())
        if y1 <= y0 or x1 <= x0:
            return np.sqrt(n)
        acc = np.empty(x1 - x0, dtype=np.float32)
        total, count = 0.0, 0
        for y in range(y0, y1, stride):
            d = pad + offsets[0, 1] + x0
            row = padded[0, y + pad + offsets[0, 0], d : d + x1 - x0]
            for x in range(x1 - x0):
                acc[x] = row[x]
            for k in range(1, n):
                d = pad + offsets[k, 1] + x0
                row = padded[k, y + pad + offsets[k, 0], d : d + x1 - x0]
                for x in range(x1 - x0):
                    acc[x] += row[x]
            for x in range(x1 - x0):
                if abs(acc[x]) < limit:
                    total += acc[x] * acc[x]
                    count += 1
        return np.sqrt(total / count) if count >= 100 else np.sqrt(n)

    @numba.njit(parallel=True, cache=True)
    def _noise_all(padded, shifts, pad, h, w, stride, limit, out):  # pragma: no cover
        for m in numba.prange(shifts.shape[0]):
            out[m] = _noise_one(padded, shifts[m], pad, h, w, stride, limit)

    # The bands run in parallel, each through the serial kernel above: loops
    # written straight inside ``prange`` do not vectorise (15x slower here).
    @numba.njit(parallel=True, cache=True)
    def _stack_bands(padded, shifts, scale, best, pad, bands):  # pragma: no cover - compiled
        h = best.shape[0]
        for b in numba.prange(bands):
            _stack_band(padded, shifts, scale, best, pad, b * h // bands, (b + 1) * h // bands)

    def _padded(snr: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, int]:
        """The maps in a frame of zeros as wide as the largest shift: no bounds checks."""
        n, h, w = snr.shape
        pad = int(np.abs(shifts).max()) if shifts.size else 0
        padded = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=np.float32)
        padded[:, pad : pad + h, pad : pad + w] = snr
        return padded, pad

    def _noise_numba(snr: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """The same measurement as ``xp``, compiled: motions in parallel."""
        n, h, w = snr.shape
        padded, pad = _padded(snr, shifts)
        out = np.empty(len(shifts))
        stride = max(1, h // NOISE_ROWS)
        _noise_all(padded, np.ascontiguousarray(shifts), pad, h, w, stride, 5.0 * np.sqrt(n), out)
        return out

    def _stack_numba(
        snr: np.ndarray, shifts: np.ndarray, scale: np.ndarray, *, progress=None
    ) -> np.ndarray:
        """The same search as ``xp``, compiled: bands of rows in parallel, motions in batches."""
        _, h, w = snr.shape
        padded, pad = _padded(snr, shifts)
        best = np.full((h, w), -np.inf, dtype=np.float32)
        bands = min(h, 8 * numba.get_num_threads())
        batch = 256
        for first in range(0, len(shifts), batch):
            part = slice(first, first + batch)
            _stack_bands(
                padded,
                np.ascontiguousarray(shifts[part]),
                np.ascontiguousarray(scale[part], dtype=np.float32),
                best,
                pad,
                bands,
            )
            if progress:
                progress(min(first + batch, len(shifts)), len(shifts))
        return best

    STACKERS["numba"] = Stacker(noise=_noise_numba, search=_stack_numba)
