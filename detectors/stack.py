"""Shift-and-stack along a motion: sample each frame where the object is.

The matched-filter maps ``psi`` and ``phi`` add linearly over frames, so the
stacked flux and SNR of an object on a given path are sums of per-frame
samples at its predicted positions: ``sum(psi) / sum(phi)`` and
``sum(psi) / sqrt(sum(phi))`` (KBMOD's likelihood). Sampling is bilinear so
that a sub-pixel path is followed faithfully.
"""

from __future__ import annotations

import numpy as np

from .backend import get_xp, to_numpy

__all__ = ["STACKERS", "best_motions", "sample_stack"]


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


def _stack_xp(snr: object, shifts: np.ndarray, *, progress=None) -> object:
    """Best sum over motions at every start pixel, with whole-image array operations.

    Parameters
    ----------
    snr : array, shape (N, H, W), float32
        Per-frame SNR maps (NumPy or CuPy).
    shifts : ndarray of int, shape (M, N, 2)
        Offsets ``(dy, dx)`` of each frame for each motion.

    Returns
    -------
    array, shape (H, W), float32
        Largest sum over the motions, per start pixel.
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
        xp.maximum(best, acc, out=best)
        if progress and m % 256 == 0:
            progress(m + 1, len(shifts))
    if progress:
        progress(len(shifts), len(shifts))
    return best


def best_motions(snr: object, shifts: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """For each start pixel ``(y[i], x[i])``, the index of the motion with the largest sum.

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
        out[i] = int(np.argmax(np.where(inside, values, 0.0).sum(axis=1)))
    return out


#: Stack-search implementations by name: ``xp`` runs on NumPy or CuPy; ``numba``
#: (when installed) is a compiled CPU kernel using every core.
STACKERS = {"xp": _stack_xp}

try:
    import numba
except ImportError:  # the xp implementation covers the CPU too, only slower
    numba = None

if numba is not None:

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def _stack_rows(padded, shifts, best, pad):  # pragma: no cover - compiled
        n = padded.shape[0]
        h, w = best.shape
        for y in numba.prange(h):
            acc = np.empty(w, dtype=np.float32)
            row_best = best[y]
            for m in range(shifts.shape[0]):
                first = padded[0, y + pad + shifts[m, 0, 0]]
                d = pad + shifts[m, 0, 1]
                for x in range(w):
                    acc[x] = first[x + d]
                for k in range(1, n):
                    row = padded[k, y + pad + shifts[m, k, 0]]
                    d = pad + shifts[m, k, 1]
                    for x in range(w):
                        acc[x] += row[x + d]
                for x in range(w):
                    row_best[x] = max(row_best[x], acc[x])

    def _stack_numba(snr: np.ndarray, shifts: np.ndarray, *, progress=None) -> np.ndarray:
        """The same search as ``xp``, compiled: rows in parallel, motions in batches.

        The maps are padded with zeros by the largest shift, so the inner
        loops carry no bounds checks and vectorise.
        """
        n, h, w = snr.shape
        pad = int(np.abs(shifts).max()) if shifts.size else 0
        padded = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=np.float32)
        padded[:, pad : pad + h, pad : pad + w] = snr
        best = np.full((h, w), -np.inf, dtype=np.float32)
        batch = 256
        for first in range(0, len(shifts), batch):
            _stack_rows(padded, np.ascontiguousarray(shifts[first : first + batch]), best, pad)
            if progress:
                progress(min(first + batch, len(shifts)), len(shifts))
        return best

    STACKERS["numba"] = _stack_numba
