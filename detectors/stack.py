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

__all__ = ["sample_stack"]


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
