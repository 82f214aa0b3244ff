"""Shift-and-stack along a motion: sample each frame where the object is.

The matched-filter maps ``psi`` and ``phi`` add linearly over frames, so the
stacked flux and SNR of an object on a given path are sums of per-frame
samples at its predicted positions: ``sum(psi) / sum(phi)`` and
``sum(psi) / sqrt(sum(phi))`` (KBMOD's likelihood). Sampling is bilinear so
that a sub-pixel path is followed faithfully.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from .backend import Array, get_xp, to_numpy

__all__ = ["STACKERS", "best_motions", "sample_stack"]


def sample_stack(
    psi: Array, phi: Array, y: np.ndarray, x: np.ndarray
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


#: Rows of start pixels sampled to measure each motion's noise.
NOISE_ROWS = 32


def _valid_starts(shifts: np.ndarray, h: int, w: int) -> np.ndarray:
    """Per motion, start pixels ``[y0, y1) x [x0, x1)`` whose whole trajectory stays on the image.

    Returns
    -------
    ndarray of int64, shape (M, 4)
        ``y0, y1, x0, x1`` of each motion.
    """
    low = np.maximum(-shifts.min(axis=1), 0)
    high = np.array([h, w]) - np.maximum(shifts.max(axis=1), 0)
    return np.ascontiguousarray(np.c_[low[:, 0], high[:, 0], low[:, 1], high[:, 1]], dtype=np.int64)


def _stack_xp(snr: Array, shifts: np.ndarray, *, progress=None) -> tuple[Array, np.ndarray]:
    """The search (see :data:`STACKERS`) with whole-image array operations, on NumPy or CuPy."""
    xp = get_xp(snr)
    n, h, w = snr.shape
    # Each motion's noise: its sums over NOISE_ROWS rows of start pixels.
    stride = max(1, h // NOISE_ROWS)
    limit = 5.0 * np.sqrt(n)
    noise = np.full(len(shifts), np.sqrt(n))
    for m, (y0, y1, x0, x1) in enumerate(_valid_starts(shifts, h, w)):
        if y1 <= y0 or x1 <= x0:
            continue
        sums = xp.zeros_like(snr[0, y0:y1:stride, x0:x1])
        for k, (dy, dx) in enumerate(shifts[m]):
            sums += snr[k, y0 + dy : y1 + dy : stride, x0 + dx : x1 + dx]
        sums = sums[xp.abs(sums) < limit]
        if sums.size >= 100:
            noise[m] = float(xp.sqrt(xp.mean(sums * sums)))
    best = xp.full((h, w), -np.inf, dtype=xp.float32)
    acc = xp.empty((h, w), dtype=xp.float32)
    reported = time.perf_counter()
    for m, offsets in enumerate(shifts):
        acc.fill(0.0)
        for k, (dy, dx) in enumerate(offsets):
            dy, dx = int(dy), int(dx)
            ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
            xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
            acc[yd, xd] += snr[k, ys, xs]
        acc *= float(1.0 / noise[m])
        xp.maximum(best, acc, out=best)
        if progress and time.perf_counter() - reported > BATCH_SECONDS:
            reported = time.perf_counter()
            progress(m + 1, len(shifts))
    if progress:
        progress(len(shifts), len(shifts))
    return best, noise


#: Seconds of work between two progress reports (and cancellation checks).
BATCH_SECONDS = 1.0


def _timed_batches(count: int, *, per_item: int) -> Iterator[slice]:
    """Slices of ``range(count)`` sized to take about `BATCH_SECONDS` each.

    The first batch is sized from a guess of 1e9 additions per second, each
    next one from the speed the last one reached, so progress (and with it a
    cancel) comes every second or so whatever the field and the machine.
    """
    size = max(1, int(1e9 * BATCH_SECONDS / max(per_item, 1)))
    first = 0
    while first < count:
        started = time.perf_counter()
        part = slice(first, min(first + size, count))
        yield part
        took = time.perf_counter() - started
        done = part.stop - part.start
        size = max(1, min(4 * size, int(done * BATCH_SECONDS / max(took, 1e-3))))
        first = part.stop


def best_motions(
    snr: Array, shifts: np.ndarray, scale: np.ndarray, y: np.ndarray, x: np.ndarray
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


#: Implementations of the search by name: ``xp`` runs on NumPy or CuPy; ``numba``
#: (when installed) is compiled for the CPU and uses every core. Each is called as
#: ``STACKERS[name](snr, shifts, progress=None)`` with per-frame SNR maps ``snr``
#: (N, H, W) and integer offsets ``shifts`` (M, N, 2) of each frame for each motion,
#: and returns ``(best, noise)``: ``noise`` (M,) is each motion's standard deviation
#: of sums, measured on ``NOISE_ROWS`` rows of start pixels (sums beyond 5 sigma,
#: objects, left out), and ``best`` (H, W) the largest over the motions of the sums
#: divided by their motion's noise. The frames share one template, so their noise is
#: correlated where a trajectory crosses the same sky twice: slow motions sum less
#: noise than ``sqrt(N)`` (and partly subtract their objects), so each motion is
#: judged against its own noise.
STACKERS = {"xp": _stack_xp}

try:
    import numba
except ImportError:  # the xp implementation covers the CPU too, only slower
    numba = None  # type: ignore[assignment]

if numba is not None:

    @numba.njit(fastmath=True, cache=True, nogil=True)
    def _sum_frames(padded, offsets, pad, y, x0, acc):  # pragma: no cover - compiled
        """``acc`` = the frames' rows summed along one motion, from start pixel ``(y, x0)``."""
        w = acc.shape[0]
        d = pad + offsets[0, 1] + x0
        row = padded[0, y + pad + offsets[0, 0], d : d + w]
        for x in range(w):
            acc[x] = row[x]
        for k in range(1, padded.shape[0]):
            d = pad + offsets[k, 1] + x0
            row = padded[k, y + pad + offsets[k, 0], d : d + w]
            for x in range(w):
                acc[x] += row[x]

    @numba.njit(fastmath=True, cache=True, nogil=True)
    def _stack_band(padded, shifts, scale, best, pad, y0, y1):  # pragma: no cover - compiled
        acc = np.empty(best.shape[1], dtype=np.float32)
        for y in range(y0, y1):
            for m in range(shifts.shape[0]):
                _sum_frames(padded, shifts[m], pad, y, 0, acc)
                f = scale[m]
                for x in range(acc.shape[0]):
                    a = acc[x] * f
                    b = best[y, x]
                    best[y, x] = a if a > b else b

    @numba.njit(fastmath=True, cache=True, nogil=True)
    def _noise_one(padded, offsets, starts, pad, stride, limit):  # pragma: no cover - compiled
        y0, y1, x0, x1 = starts[0], starts[1], starts[2], starts[3]
        if y1 <= y0 or x1 <= x0:
            return np.sqrt(padded.shape[0])
        acc = np.empty(x1 - x0, dtype=np.float32)
        total, count = 0.0, 0
        for y in range(y0, y1, stride):
            _sum_frames(padded, offsets, pad, y, x0, acc)
            for x in range(acc.shape[0]):
                if abs(acc[x]) < limit:
                    total += acc[x] * acc[x]
                    count += 1
        return np.sqrt(total / count) if count >= 100 else np.sqrt(padded.shape[0])

    @numba.njit(parallel=True, cache=True)
    def _noise_all(padded, shifts, starts, pad, stride, limit, out):  # pragma: no cover
        for m in numba.prange(shifts.shape[0]):
            out[m] = _noise_one(padded, shifts[m], starts[m], pad, stride, limit)

    # The bands run in parallel, each through the serial kernel above: loops
    # written straight inside ``prange`` do not vectorise (15x slower here).
    @numba.njit(parallel=True, cache=True)
    def _stack_bands(padded, shifts, scale, best, pad, bands):  # pragma: no cover - compiled
        h = best.shape[0]
        for b in numba.prange(bands):
            _stack_band(padded, shifts, scale, best, pad, b * h // bands, (b + 1) * h // bands)

    def _stack_numba(
        snr: np.ndarray, shifts: np.ndarray, *, progress=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The same search as ``xp``, compiled: motions (noise) or bands of rows in parallel.

        The maps are padded once with zeros as wide as the largest shift, so
        the inner loops carry no bounds checks and vectorise.
        """
        n, h, w = snr.shape
        pad = int(np.abs(shifts).max()) if shifts.size else 0
        padded = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=np.float32)
        padded[:, pad : pad + h, pad : pad + w] = snr
        shifts = np.ascontiguousarray(shifts)
        noise = np.empty(len(shifts))
        stride = max(1, h // NOISE_ROWS)
        starts = _valid_starts(shifts, h, w)
        limit = 5.0 * np.sqrt(n)
        for part in _timed_batches(len(shifts), per_item=n * NOISE_ROWS * w):
            _noise_all(padded, shifts[part], starts[part], pad, stride, limit, noise[part])
            if progress:
                progress(0, len(shifts))  # a heartbeat: a cancel can land here
        scale = (1.0 / noise).astype(np.float32)
        best = np.full((h, w), -np.inf, dtype=np.float32)
        bands = min(h, 8 * numba.get_num_threads())
        for part in _timed_batches(len(shifts), per_item=n * h * w):
            _stack_bands(padded, shifts[part], scale[part], best, pad, bands)
            if progress:
                progress(part.stop, len(shifts))
        return best, noise

    STACKERS["numba"] = _stack_numba
