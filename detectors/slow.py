"""Slow movers: sources whose centroid drifts steadily across the sequence.

An object that moves less than about two PSF widths over the whole
sequence stays inside its own footprint, so the median template keeps it
and difference imaging subtracts it away. It is still measurable: its
centroid moves linearly with time while a star's stays put. This stage
finds sources on the mean of the frames, measures each one's windowed centroid in
every frame, and keeps those whose motion is both significant (against the
centroid errors) and large enough in pixels that registration and seeing
cannot fake it. Blended sources are left out, since the centroid of a blend
shifts with seeing, which drifts with airmass, and in frames of low SNR it
slides from one component to the other: neighbours within three FWHM, and on
the static sky any source much more elongated than a point source or a slow
mover can be (`MAX_ELONGATION`).
"""

from __future__ import annotations

import math

import numpy as np
import sep
from scipy.spatial import cKDTree

from .aperture import sum_circle, winpos
from .backend import Ticker, get_xp, map_frames, to_numpy
from .fit import motion_fit
from .stats import mad_std, stack_mean
from .tracks import CENTROID_FLOOR_PX, model_positions
from .types import FWHM_PER_SIGMA, Differences, Mover

__all__ = ["find_slow_movers"]

#: Chi-square gain of a moving over a fixed position (2 dof) to call it moving:
#: 40 (a chance of 2e-9 per source) keeps thousands of stars from doing so.
MOTION_CHI2 = 40.0
#: Smallest total motion over the sequence that counts, pixels: below it,
#: residual registration and differential refraction could fake motion.
MIN_SHIFT_PX = 0.6
#: A source on the static sky whose isophotal shape has axis ratio a/b above
#: this, with a major axis wider than ``1.2 sigma`` of the PSF, is a blend of
#: unresolved sources (or a galaxy): an object that the median template keeps
#: moved less than one FWHM, which stretches a point source to a/b <= 1.25.
MAX_ELONGATION = 1.5


def _frame_image(diffs: Differences, i: int) -> np.ndarray:
    """Frame ``i`` on the common grid and flux scale, rebuilt from its difference."""
    image = to_numpy(diffs.diff[i] + diffs.template)
    return np.where(np.isfinite(image), image, np.float32(0.0)).astype(np.float32, copy=False)


def _isolated_sources(image: np.ndarray, fwhm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Isolated, unflagged sources at aperture SNR >= 6 (sep): x, y, and whether point-like.

    Point-like: not elongated beyond `MAX_ELONGATION` with a major axis wider
    than 1.2 PSF sigma (a blend or a galaxy is not).
    """
    mask = ~np.isfinite(image)
    data = np.ascontiguousarray(np.nan_to_num(image), dtype=np.float32)
    noise = mad_std(image[::2, ::2])  # a quarter of the pixels: the same sigma, 4x cheaper
    sep.set_extract_pixstack(2_000_000)
    try:
        objs = sep.extract(data, 2.5, err=noise, mask=mask, minarea=5)
    except Exception:  # sep's object or pixel-stack limit on crowded fields
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    flux, ferr, _ = sep.sum_circle(data, objs["x"], objs["y"], fwhm, err=noise, mask=mask)
    objs = objs[flux > 6 * ferr]
    x, y = objs["x"], objs["y"]
    if x.size > 1:
        dist, _ = cKDTree(np.c_[x, y]).query(np.c_[x, y], k=2)
        isolated = dist[:, 1] > 3 * fwhm
    else:
        isolated = np.ones(x.size, dtype=bool)
    keep = isolated & (objs["flag"] == 0)
    sigma = fwhm / FWHM_PER_SIGMA
    a, b = objs["a"], np.maximum(objs["b"], 1e-3)
    pointlike = ~((a / b > MAX_ELONGATION) & (a > 1.2 * sigma))
    return x[keep], y[keep], pointlike[keep]


def _sky_sources(diffs: Differences, fwhm: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate sources from the median template and from the mean of the frames.

    An object moving less than a PSF width survives the median template; one
    moving one to three widths is rejected by the median (it covers each
    pixel in only a few frames) but stays, smeared, in the mean. Sources
    found in both are kept once, and a blend on the static sky not at all
    (its smeared image in the mean is the same blend).
    """
    mean = to_numpy(diffs.template + stack_mean(diffs.diff))
    tx, ty, pointlike = _isolated_sources(to_numpy(diffs.template), fwhm)
    mx, my, _ = _isolated_sources(mean, fwhm)
    if tx.size and mx.size:
        dist, _ = cKDTree(np.c_[tx, ty]).query(np.c_[mx, my])
        mx, my = mx[dist > 1.5], my[dist > 1.5]
    return np.r_[tx[pointlike], mx], np.r_[ty[pointlike], my]


def find_slow_movers(
    diffs: Differences,
    mjd: np.ndarray,
    *,
    rate_min: float,
    rate_max: float,
    progress=None,
) -> list[Mover]:
    """Find sources that drift linearly across the sequence.

    Parameters
    ----------
    diffs : Differences
        Difference images and template on the common grid.
    mjd : ndarray, shape (N,)
        Mid-exposure time of each frame (days).
    rate_min, rate_max : float, keyword-only
        Allowed motion in pixels per day.
    progress : callable, optional
        ``progress(done, total)`` after each frame.

    Returns
    -------
    list of Mover
        One per slow mover, positions and errors on the fitted path.
    """
    n = mjd.size
    sigma = float(np.median(diffs.psf_sigma))
    fwhm = diffs.fwhm
    x0, y0 = _sky_sources(diffs, fwhm)
    if x0.size == 0 or n < 3:
        return []
    m = x0.size
    xs, ys = np.full((n, m), np.nan), np.full((n, m), np.nan)
    flux, ferr = np.full((n, m), np.nan), np.full((n, m), np.nan)
    radius = 1.5 * fwhm

    def measure(i: int) -> None:
        diff = to_numpy(diffs.diff[i])
        image = _frame_image(diffs, i)
        # Masked pixels (a bad column, a saturated star) move with each frame's
        # dither; a centroid they touch would drift like a mover, so flag it.
        masked = ~np.isfinite(diff)
        noise = mad_std(diff[::2, ::2])
        # sep's centroid and aperture sum, compiled: without the GIL, frames in threads.
        xw, yw, flag = winpos(image, x0, y0, np.full(m, sigma))
        f, fe, fflag = sum_circle(image, xw, yw, radius, err=noise, mask=masked)
        good = (flag == 0) & (fflag == 0) & (np.hypot(xw - x0, yw - y0) < fwhm)
        xs[i, good], ys[i, good] = xw[good], yw[good]
        flux[i, good], ferr[i, good] = f[good], fe[good]
        tick()

    tick = Ticker(progress, total=n)
    map_frames(measure, n, get_xp(diffs.diff))
    snr = flux / ferr
    err = np.hypot(math.sqrt(2) * sigma / np.maximum(snr, 1.0), CENTROID_FLOOR_PX)
    t = mjd - mjd.mean()
    found = []
    for j in range(m):
        ok = np.isfinite(xs[:, j]) & (snr[:, j] > 3)
        if ok.sum() < max(3, math.ceil(0.6 * n)):
            continue
        # Drop frames where a cosmic ray or streak lands on the source: its
        # flux jumps far above the source's usual level.
        ok &= flux[:, j] < np.nanmedian(flux[ok, j]) + 5 * ferr[:, j]
        _, _, inlier = motion_fit(t[ok], xs[ok, j], ys[ok, j], 1.0 / err[ok, j] ** 2)
        ok[np.flatnonzero(ok)[~inlier]] = False
        if ok.sum() < max(3, math.ceil(0.6 * n)):
            continue
        w = 1.0 / err[ok, j] ** 2
        a = np.c_[np.ones(ok.sum()), t[ok]]
        cov = np.linalg.inv(a.T @ (a * w[:, None]))
        px, py = cov @ (a.T @ (w * xs[ok, j])), cov @ (a.T @ (w * ys[ok, j]))
        fixed = np.sum(
            w
            * (
                (xs[ok, j] - np.average(xs[ok, j], weights=w)) ** 2
                + (ys[ok, j] - np.average(ys[ok, j], weights=w)) ** 2
            )
        )
        moving = np.sum(w * ((xs[ok, j] - a @ px) ** 2 + (ys[ok, j] - a @ py) ** 2))
        rate = math.hypot(px[1], py[1])
        if (
            fixed - moving < MOTION_CHI2
            or rate * np.ptp(t) < MIN_SHIFT_PX
            or not rate_min <= rate <= rate_max
            or moving / max(2 * ok.sum() - 4, 1) > 4.0
        ):
            continue
        xm, ym, em = model_positions(t[ok], xs[ok, j], ys[ok, j], err[ok, j])
        found.append(
            Mover(
                frames=np.flatnonzero(ok),
                x=xm,
                y=ym,
                err=em,
                flux=flux[ok, j],
                snr=snr[ok, j],
                stacked=float(np.sum(flux[ok, j]) / np.sqrt(np.sum(ferr[ok, j] ** 2))),
                vel=(float(px[1]), float(py[1])),
            )
        )
    return found
