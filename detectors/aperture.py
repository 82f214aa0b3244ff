"""sep's windowed centroid and circular aperture sum, compiled without the GIL.

sep 1.4 holds the GIL in ``winpos`` and ``sum_circle``, so the frames that
the slow-mover search and the star catalogues measure in threads ran on one
core. These numba kernels do the same sums in the same order as sep 1.4.1,
so they give the same bits (the tests compare them with sep), and release
the GIL.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["APER_HASMASKED", "APER_TRUNC", "sum_circle", "winpos"]

#: sep's windowed centroid (SExtractor's XWIN/YWIN): window radius in sigma,
#: most steps, smallest step that continues (px), offset factor (2 for a
#: Gaussian), sub-pixels per side on the window's edge, smallest sigma.
_WIN_NSIG, _WIN_STEPS, _WIN_STEPMIN, _WIN_FAC, _WIN_SUBPIX = 4.0, 16, 2e-4, 2.0, 11
_WIN_MINSIG = 2.0 / 2.35 * 0.5
#: sep's aperture flags: the box left the image; a masked pixel in the aperture.
APER_TRUNC, APER_HASMASKED = 0x0010, 0x0020
#: sep.sum_circle's sub-pixels per side on the aperture's edge.
_SUM_SUBPIX = 5


@numba.njit(cache=True, nogil=True, inline="always")
def _box(x, y, r, w, h):  # pragma: no cover - compiled
    """sep's box around a circle: inclusive start, exclusive end, clipped; truncated or not.

    ``int`` truncates towards zero as C's cast does (a start of -0.7 is 0, unflagged).
    """
    x0, x1 = int(x - r + 0.5), int(x + r + 1.4999999)
    y0, y1 = int(y - r + 0.5), int(y + r + 1.4999999)
    trunc = x0 < 0 or x1 > w or y0 < 0 or y1 > h
    return max(x0, 0), min(x1, w), max(y0, 0), min(y1, h), trunc


@numba.njit(cache=True, nogil=True, inline="always")
def _rings(r):  # pragma: no cover - compiled
    """Squared radius, and the squared radii within which a pixel lies wholly inside or
    outside it (sep's half-diagonal, 0.7072): only the pixels between are sub-sampled."""
    return r * r, max(r - 0.7072, 0.0) ** 2, (r + 0.7072) ** 2


@numba.njit(cache=True, nogil=True, inline="always")
def _overlap(dx, dy, r2, subpix):  # pragma: no cover - compiled
    """Area of a pixel (offset dx, dy from the centre) inside radius sqrt(r2), by sub-pixels.

    Sums as sep does, step by step, so that the counts agree to the last sub-pixel.
    """
    scale = 1.0 / subpix
    scale2 = scale * scale
    offset = 0.5 * (scale - 1.0)
    dx += offset
    dy += offset
    area = 0.0
    for _ in range(subpix):
        dx1 = dx
        dy2 = dy * dy
        for _ in range(subpix):
            area += scale2 if dx1 * dx1 + dy2 < r2 else 0.0  # + 0.0 is exact: no branch
            dx1 += scale
        dy += scale
    return area


@numba.njit(cache=True, nogil=True)
def _winpos(image, x, y, sig, xout, yout, flag):  # pragma: no cover - compiled
    h, w = image.shape
    for k in range(x.size):
        xc, yc, f = x[k], y[k], 0
        s = max(sig[k], _WIN_MINSIG)
        r = _WIN_NSIG * s
        r2, r_in2, r_out2 = _rings(r)
        inv2s2 = 1.0 / (2.0 * s * s)
        for _ in range(_WIN_STEPS):
            x0, x1, y0, y1, trunc = _box(xc, yc, r, w, h)
            if trunc:
                f |= APER_TRUNC
            twv = sx = sy = 0.0
            for iy in range(y0, y1):
                dy = iy - yc
                for ix in range(x0, x1):
                    dx = ix - xc
                    rpix2 = dx * dx + dy * dy
                    if rpix2 >= r_out2:
                        continue
                    overlap = _overlap(dx, dy, r2, _WIN_SUBPIX) if rpix2 > r_in2 else 1.0
                    wpix = image[iy, ix] * overlap * np.exp(-rpix2 * inv2s2)
                    twv += wpix
                    sx += wpix * dx
                    sy += wpix * dy
            if twv <= 0.0:
                break
            stepx, stepy = sx / twv * _WIN_FAC, sy / twv * _WIN_FAC
            xc += stepx
            yc += stepy
            if stepx * stepx + stepy * stepy < _WIN_STEPMIN * _WIN_STEPMIN:
                break
        xout[k], yout[k], flag[k] = xc, yc, f


def winpos(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, sig: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``sep.winpos(image, x, y, sig)`` (no mask): windowed centroids, and sep's flags.

    The same iteration (a Gaussian window of ``sig``, 4 sigma wide, 11 x 11
    sub-pixels on its edge, up to 16 steps) without holding the GIL, so
    frames measured in threads use every core; sep.winpos holds it.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    x, y, sig = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x, y, sig)))
    xout, yout = np.empty(x.shape), np.empty(x.shape)
    flag = np.empty(x.shape, dtype=np.int16)
    _winpos(image, x.ravel(), y.ravel(), sig.ravel(), xout.ravel(), yout.ravel(), flag.ravel())
    return xout, yout, flag


@numba.njit(cache=True, nogil=True)
def _sum_circle(image, mask, x, y, r, var, total, error, flag):  # pragma: no cover - compiled
    h, w = image.shape
    r2, r_in2, r_out2 = _rings(r)
    for k in range(x.size):
        xc, yc = x[k], y[k]
        x0, x1, y0, y1, trunc = _box(xc, yc, r, w, h)
        f = APER_TRUNC if trunc else 0
        tv = tvar = area = masked = 0.0
        for iy in range(y0, y1):
            dy = iy - yc
            for ix in range(x0, x1):
                dx = ix - xc
                rpix2 = dx * dx + dy * dy
                if rpix2 >= r_out2:
                    continue
                overlap = _overlap(dx, dy, r2, _SUM_SUBPIX) if rpix2 > r_in2 else 1.0
                if mask[iy, ix]:
                    f |= APER_HASMASKED
                    masked += overlap
                else:
                    tv += image[iy, ix] * overlap
                    tvar += var * overlap
                area += overlap
        # Masked pixels count as the mean of the others, as sep does.
        scale = area / (area - masked) if area > masked else np.nan
        total[k] = tv * scale
        error[k] = np.sqrt(tvar * scale)
        flag[k] = f


def sum_circle(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, r: float, *, err: float, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``sep.sum_circle(image, x, y, r, err=err, mask=mask)``: sums, errors and sep's flags.

    5 x 5 sub-pixels on the aperture's edge, as sep's default; masked
    pixels are never read (they may be NaN) and count as the mean of the
    others. Without the GIL (see `winpos`).
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    total, error = np.empty(x.shape), np.empty(x.shape)
    flag = np.empty(x.shape, dtype=np.int16)
    var = float(np.float32(float(err) ** 2))  # sep keeps a pixel's variance in float32
    _sum_circle(
        image, mask, x.ravel(), y.ravel(), float(r), var, total.ravel(), error.ravel(), flag.ravel()
    )
    return total, error, flag
