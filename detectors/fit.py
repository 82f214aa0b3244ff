"""Detailed detector (CPU): fit, measure, verify and merge tracks.

A tracklet from linking is a handful of noisy peaks. Here each one is fitted
with a robust constant-velocity motion, measured in every frame with a PSF
fit at the predicted place (position, flux and their errors), shift-and-
stacked along the motion to get the stacked SNR, and then checked: too slow
(stationary residual), too weak when stacked, or carried by one frame (a
cosmic ray plus noise) means rejected. Duplicates of one object are merged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from astropy.wcs import WCS

from .backend import to_numpy
from .stack import sample_stack
from .stats import stack_median
from .tracks import CENTROID_FLOOR_PX, build_track, model_positions
from .types import Candidates, Differences, Track

__all__ = ["FitSettings", "fit_tracks", "motion_fit"]


@dataclass(frozen=True, kw_only=True)
class FitSettings:
    """What a track must show to be reported (rates in pixels per day)."""

    rate_min: float
    rate_max: float
    min_stacked_snr: float = 7.0
    min_frame_snr: float = 3.0
    max_frame_share: float = 0.5
    min_measured: int = 3


@dataclass
class _Measurement:
    """Per-frame PSF fits along a predicted path (NaN where a frame gave none).

    ``x``, ``y``, ``err`` are pixels, ``flux`` reference-frame ADU; ``psi``
    and ``phi`` are the matched-filter samples on the path.
    """

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    snr: np.ndarray
    err: np.ndarray
    psi: np.ndarray
    phi: np.ndarray


@dataclass
class _Verified:
    """A tracklet that passed: its measurement, usable frames, stacked SNR."""

    m: _Measurement
    ok: np.ndarray
    stacked: float


def motion_fit(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, *, clip: float = 3.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted constant-velocity fit with iterative outlier clipping.

    Parameters
    ----------
    t : ndarray, shape (M,)
        Times relative to a reference epoch (days).
    x, y : ndarray, shape (M,)
        Positions (pixels).
    w : ndarray, shape (M,), optional
        Weights (1 / sigma^2).
    clip : float, keyword-only
        Points further than ``clip`` times the robust residual scale (at
        least 0.3 px) are dropped and the fit repeated.

    Returns
    -------
    px, py : ndarray, shape (2,)
        ``(position at t=0, velocity)`` for x and y.
    inlier : ndarray of bool, shape (M,)
    """
    w = np.ones_like(t) if w is None else w
    inlier = np.ones(t.size, dtype=bool)
    for _ in range(3):
        a = np.c_[np.ones(inlier.sum()), t[inlier]]
        sw = np.sqrt(w[inlier])[:, None]
        px = np.linalg.lstsq(a * sw, x[inlier] * sw[:, 0], rcond=None)[0]
        py = np.linalg.lstsq(a * sw, y[inlier] * sw[:, 0], rcond=None)[0]
        r = np.hypot(x - (px[0] + px[1] * t), y - (py[0] + py[1] * t))
        scale = max(0.3, 1.4826 * float(np.median(r[inlier])))
        new = r < clip * scale
        if new.sum() < 3 or np.array_equal(new, inlier):
            break
        inlier = new
    return px, py, inlier


def _psf_fit(
    stamp: np.ndarray, x: float, y: float, sigma: float
) -> tuple[float, float, float] | None:
    """Least-squares Gaussian fit of position and flux on a square stamp.

    ``x, y`` start the fit, relative to the stamp's centre pixel; the result
    is in the same coordinates, with the flux. None where too little of the
    stamp has data, the flux is not positive, or the fit leaves the stamp.
    """
    ok, x, y, flux = _gauss_newton(np.ascontiguousarray(stamp, dtype=np.float64), x, y, sigma)
    return (x, y, flux) if ok else None


@numba.njit(cache=True, nogil=True)
def _gauss_newton(stamp, x, y, sigma):  # pragma: no cover - compiled
    """Gauss-Newton steps on (x, y), the flux at its best value for each: a
    thousand small fits per job, compiled (NumPy's per-call overhead was 0.5 s)."""
    n = stamp.shape[0]
    r = n // 2
    good = 0
    for i in range(n):
        for j in range(n):
            good += np.isfinite(stamp[i, j])
    if good < 0.8 * n * n:
        return False, x, y, 0.0
    two_s2 = 2.0 * sigma * sigma
    norm = 2.0 * math.pi * sigma * sigma
    flux = 0.0
    for _ in range(8):
        sg, gg = 0.0, 0.0
        for i in range(n):
            for j in range(n):
                v = stamp[i, j]
                if np.isfinite(v):
                    g = math.exp(-((j - r - x) ** 2 + (i - r - y) ** 2) / two_s2) / norm
                    sg += v * g
                    gg += g * g
        flux = sg / gg
        if not flux > 0:
            return False, x, y, flux
        sxx, sxy, syy, bx, by = 0.0, 0.0, 0.0, 0.0, 0.0
        for i in range(n):
            for j in range(n):
                v = stamp[i, j]
                if np.isfinite(v):
                    g = math.exp(-((j - r - x) ** 2 + (i - r - y) ** 2) / two_s2) / norm
                    res = v - flux * g
                    jx = flux * g * (j - r - x) / (sigma * sigma)
                    jy = flux * g * (i - r - y) / (sigma * sigma)
                    sxx += jx * jx
                    sxy += jx * jy
                    syy += jy * jy
                    bx += jx * res
                    by += jy * res
        det = sxx * syy - sxy * sxy
        if det == 0.0:
            return False, x, y, flux
        dx = (syy * bx - sxy * by) / det
        dy = (sxx * by - sxy * bx) / det
        x += min(max(dx, -1.0), 1.0)
        y += min(max(dy, -1.0), 1.0)
        if abs(dx) < 1e-3 and abs(dy) < 1e-3:
            break
    if abs(x) > r or abs(y) > r:
        return False, x, y, flux
    return True, x, y, flux


def _stamp_cube(diffs: Differences, xi: int, yi: int, r: int) -> np.ndarray | None:
    """The (N, 2r+1, 2r+1) difference-image stamps of every frame around one pixel."""
    _, h, w = diffs.diff.shape
    if not (r <= xi < w - r and r <= yi < h - r):
        return None
    return to_numpy(diffs.diff[:, yi - r : yi + r + 1, xi - r : xi + r + 1])


def _measure(track_xy: np.ndarray, diffs: Differences) -> _Measurement:
    """Per-frame PSF fits at predicted positions, and the stack samples there.

    A slow object leaves part of itself in the median template, which biases
    its difference-image centroid away from its mean position. The part the
    template kept is visible in the frames where the object is elsewhere, so
    their median stamp at this place is added back before the fit.
    """
    n = track_xy.shape[0]
    psi, phi = sample_stack(diffs.psi, diffs.phi, track_xy[:, 1], track_xy[:, 0])
    nan = np.full(n, np.nan)
    out = _Measurement(
        x=nan.copy(),
        y=nan.copy(),
        flux=nan.copy(),
        snr=nan.copy(),
        err=nan.copy(),
        psi=psi,
        phi=phi,
    )
    r = max(3, math.ceil(2.5 * float(np.max(diffs.psf_sigma))))
    fwhm = diffs.fwhm
    for k in range(n):
        xi, yi = round(float(track_xy[k, 0])), round(float(track_xy[k, 1]))
        cube = _stamp_cube(diffs, xi, yi, r) if phi[k] > 0 else None
        if cube is None:
            continue
        far = np.hypot(*(track_xy - track_xy[k]).T) > 2 * fwhm
        stamp = cube[k]
        if far.sum() >= 2:
            stamp = stamp - stack_median(cube[far])[0]
        fit = _psf_fit(stamp, track_xy[k, 0] - xi, track_xy[k, 1] - yi, float(diffs.psf_sigma[k]))
        if fit is None:
            continue
        snr = psi[k] / math.sqrt(phi[k])
        out.x[k], out.y[k], out.flux[k], out.snr[k] = xi + fit[0], yi + fit[1], fit[2], snr
        out.err[k] = math.hypot(
            math.sqrt(2) * diffs.psf_sigma[k] / max(snr, 1e-3), CENTROID_FLOOR_PX
        )
    return out


def _usable(m: _Measurement, pred: np.ndarray, cfg: FitSettings) -> np.ndarray:
    """Frames whose PSF fit is significant and lands where the motion predicts."""
    miss = np.hypot(m.x - pred[:, 0], m.y - pred[:, 1])
    with np.errstate(invalid="ignore"):
        return (m.snr >= cfg.min_frame_snr) & (miss < 3 * m.err + 0.7)


def _unspoiled(psi: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Frames with data whose SNR is not far above the rest (a cosmic ray or
    streak on the path), so one bad frame neither makes nor breaks a track."""
    has = phi > 0
    if has.sum() < 3:
        return has
    snr = np.where(has, psi / np.sqrt(np.where(has, phi, 1.0)), np.nan)
    return has & (snr < np.nanmedian(snr) + 5.0 + 0.5 * abs(np.nanmedian(snr)))


def _evaluate(
    seed: np.ndarray, cands: Candidates, mjd: np.ndarray, diffs: Differences, cfg: FitSettings
) -> _Verified | None:
    t0 = float(np.mean(mjd))
    px, py, inl = motion_fit(mjd[cands.frame[seed]] - t0, cands.x[seed], cands.y[seed])
    if inl.sum() < 3:
        return None
    for _ in range(2):
        pred = np.c_[px[0] + px[1] * (mjd - t0), py[0] + py[1] * (mjd - t0)]
        m = _measure(pred, diffs)
        ok = _usable(m, pred, cfg)
        if ok.sum() < cfg.min_measured:
            return None
        px, py, inl = motion_fit(mjd[ok] - t0, m.x[ok], m.y[ok], 1.0 / m.err[ok] ** 2)
        ok[np.flatnonzero(ok)[~inl]] = False
    pred = np.c_[px[0] + px[1] * (mjd - t0), py[0] + py[1] * (mjd - t0)]
    m = _measure(pred, diffs)
    has = _unspoiled(m.psi, m.phi)
    stacked = float(np.sum(m.psi[has]) / math.sqrt(np.sum(m.phi[has])))
    share = float(np.max(m.psi[has]) / np.sum(m.psi[has])) if np.sum(m.psi[has]) > 0 else 1.0
    rate = math.hypot(px[1], py[1])
    ok = _usable(m, pred, cfg)
    if (
        stacked < cfg.min_stacked_snr
        or not cfg.rate_min <= rate <= cfg.rate_max
        or (has.sum() >= 4 and share > cfg.max_frame_share)
        or ok.sum() < cfg.min_measured
    ):
        return None
    return _Verified(m=m, ok=ok, stacked=stacked)


def fit_tracks(
    tracklets: list[np.ndarray],
    cands: Candidates,
    mjd: np.ndarray,
    diffs: Differences,
    wcs: WCS | None,
    *,
    settings: FitSettings,
    zero_point: float | None = None,
    pixel_scale: float | None = None,
    progress=None,
) -> list[Track]:
    """Turn tracklets into verified, measured tracks.

    Parameters
    ----------
    tracklets : list of int arrays
        Candidate indices of each tracklet (from :func:`link_candidates`).
    cands : Candidates
    mjd : ndarray, shape (N,)
        Mid-exposure UTC MJD of each frame.
    diffs : Differences
    wcs : WCS or None
        Celestial WCS of the common pixel grid (None: positions in pixels only).
    settings : FitSettings, keyword-only
    zero_point : float, keyword-only
        Magnitude of 1 ADU in the reference frame; magnitudes are NaN without it.
    pixel_scale : float, keyword-only
        Arcsec per pixel of the grid, needed when ``wcs`` is None.
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    list of Track
        Strongest first; empty when nothing survives.
    """
    found = []
    for i, seed in enumerate(tracklets):
        result = _evaluate(seed, cands, mjd, diffs, settings)
        if result is not None:
            found.append(result)
        if progress:
            progress(i + 1, len(tracklets))
    tracks = []
    for f in found:
        ok, m = f.ok, f.m
        frames = np.flatnonzero(ok)
        x, y, err = model_positions(mjd[ok] - np.mean(mjd), m.x[ok], m.y[ok], m.err[ok])
        tracks.append(
            build_track(
                frames,
                mjd,
                x,
                y,
                err,
                flux=m.flux[ok],
                snr=m.snr[ok],
                stacked_snr=f.stacked,
                wcs=wcs,
                zero_point=zero_point,
                origin="fast",
                pixel_scale=pixel_scale,
            )
        )
    return tracks
