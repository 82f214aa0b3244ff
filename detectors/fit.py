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

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .backend import to_numpy
from .difference import Differences
from .stack import sample_stack
from .types import Candidates, Track

__all__ = ["FitSettings", "fit_tracks", "motion_fit"]

#: Centroid error that no SNR removes (PSF model, resampling, WCS), pixels;
#: added in quadrature so bright objects do not claim milliarcsecond errors.
CENTROID_FLOOR_PX = 0.03


@dataclass(frozen=True, kw_only=True)
class FitSettings:
    """What a track must show to be reported (rates in pixels per day)."""

    rate_min: float
    rate_max: float
    min_stacked_snr: float = 7.0
    min_frame_snr: float = 3.0
    max_frame_share: float = 0.5
    min_measured: int = 3


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
    diff: np.ndarray, x0: float, y0: float, sigma: float
) -> tuple[float, float, float] | None:
    """Least-squares Gaussian fit of position and flux on a small stamp."""
    r = max(3, math.ceil(2.5 * sigma))
    xi, yi = round(x0), round(y0)
    h, w = diff.shape
    if not (r <= xi < w - r and r <= yi < h - r):
        return None
    stamp = diff[yi - r : yi + r + 1, xi - r : xi + r + 1]
    good = np.isfinite(stamp)
    if good.mean() < 0.8:
        return None
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(float)
    x, y = x0 - xi, y0 - yi
    for _ in range(8):
        g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
        flux = float(np.sum(stamp[good] * g[good]) / np.sum(g[good] ** 2))
        if flux <= 0:
            return None
        # Gauss-Newton step on (x, y) with flux held at its best value.
        res = (stamp - flux * g)[good]
        jx = (flux * g * (xx - x) / sigma**2)[good]
        jy = (flux * g * (yy - y) / sigma**2)[good]
        jtj = np.array([[jx @ jx, jx @ jy], [jx @ jy, jy @ jy]])
        try:
            dx, dy = np.linalg.solve(jtj, [jx @ res, jy @ res])
        except np.linalg.LinAlgError:
            return None
        x, y = x + float(np.clip(dx, -1, 1)), y + float(np.clip(dy, -1, 1))
        if abs(dx) < 1e-3 and abs(dy) < 1e-3:
            break
    if abs(x) > r or abs(y) > r:
        return None
    return xi + x, yi + y, flux


def _measure(track_xy: np.ndarray, diffs: Differences) -> dict[str, np.ndarray]:
    """Per-frame PSF fits at predicted positions, and the stack samples there."""
    n = track_xy.shape[0]
    psi, phi = sample_stack(diffs.psi, diffs.phi, track_xy[:, 1], track_xy[:, 0])
    out = {k: np.full(n, np.nan) for k in ("x", "y", "flux", "snr", "err")}
    out["psi"], out["phi"] = psi, phi
    for k in range(n):
        if not phi[k] > 0:
            continue
        fit = _psf_fit(to_numpy(diffs.diff[k]), *track_xy[k], float(diffs.psf_sigma[k]))
        if fit is None:
            continue
        snr = psi[k] / math.sqrt(phi[k])
        out["x"][k], out["y"][k], out["flux"][k], out["snr"][k] = *fit, snr
        out["err"][k] = math.hypot(
            math.sqrt(2) * diffs.psf_sigma[k] / max(snr, 1e-3), CENTROID_FLOOR_PX
        )
    return out


def _usable(m: dict[str, np.ndarray], pred: np.ndarray, cfg: FitSettings) -> np.ndarray:
    """Frames whose PSF fit is significant and lands where the motion predicts."""
    miss = np.hypot(m["x"] - pred[:, 0], m["y"] - pred[:, 1])
    with np.errstate(invalid="ignore"):
        return (m["snr"] >= cfg.min_frame_snr) & (miss < 3 * m["err"] + 0.7)


def _evaluate(
    seed: np.ndarray, cands: Candidates, mjd: np.ndarray, diffs: Differences, cfg: FitSettings
) -> dict | None:
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
        px, py, inl = motion_fit(mjd[ok] - t0, m["x"][ok], m["y"][ok], 1.0 / m["err"][ok] ** 2)
        ok[np.flatnonzero(ok)[~inl]] = False
    pred = np.c_[px[0] + px[1] * (mjd - t0), py[0] + py[1] * (mjd - t0)]
    m = _measure(pred, diffs)
    has = m["phi"] > 0
    stacked = float(np.sum(m["psi"][has]) / math.sqrt(np.sum(m["phi"][has])))
    share = (
        float(np.max(m["psi"][has]) / np.sum(m["psi"][has])) if np.sum(m["psi"][has]) > 0 else 1.0
    )
    rate = math.hypot(px[1], py[1])
    ok = _usable(m, pred, cfg)
    if (
        stacked < cfg.min_stacked_snr
        or not cfg.rate_min <= rate <= cfg.rate_max
        or (has.sum() >= 4 and share > cfg.max_frame_share)
        or ok.sum() < cfg.min_measured
    ):
        return None
    return {"m": m, "ok": ok, "pred": pred, "stacked": stacked, "vel": (px[1], py[1])}


def _merge(found: list[dict], fwhm: float) -> list[dict]:
    """Keep the strongest of tracks whose predicted paths coincide."""
    found = sorted(found, key=lambda f: -f["stacked"])
    kept: list[dict] = []
    for f in found:
        if all(np.median(np.hypot(*(f["pred"] - k["pred"]).T)) > 2 * fwhm for k in kept):
            kept.append(f)
    return kept


def fit_tracks(
    tracklets: list[np.ndarray],
    cands: Candidates,
    mjd: np.ndarray,
    diffs: Differences,
    wcs: WCS,
    *,
    settings: FitSettings,
    zero_point: float | None = None,
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
    wcs : WCS
        Celestial WCS of the common pixel grid.
    settings : FitSettings, keyword-only
    zero_point : float, keyword-only
        Magnitude of 1 ADU in the reference frame; magnitudes are NaN without it.
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
    fwhm = 2.3548 * float(np.median(diffs.psf_sigma))
    scale = proj_plane_pixel_scales(wcs) * 3600.0  # arcsec per pixel, (x, y)
    tracks = []
    for f in _merge(found, fwhm):
        ok, m = f["ok"], f["m"]
        frames = np.flatnonzero(ok)
        ra, dec = wcs.pixel_to_world_values(m["x"][ok], m["y"][ok])
        # Rate and direction from the fitted path's two ends, on the sky.
        ends = f["pred"][[0, -1]]
        (ra0, ra1), (de0, de1) = wcs.pixel_to_world_values(ends[:, 0], ends[:, 1])
        dx = (ra1 - ra0) * math.cos(math.radians(0.5 * (de0 + de1))) * 3600.0
        dy = (de1 - de0) * 3600.0
        hours = (mjd[-1] - mjd[0]) * 24.0
        flux = m["flux"][ok]
        mag = np.full(flux.size, np.nan)
        if zero_point is not None:
            mag = np.where(flux > 0, zero_point - 2.5 * np.log10(np.maximum(flux, 1e-30)), np.nan)
        tracks.append(
            Track(
                frames=frames,
                mjd=mjd[ok],
                y=m["y"][ok],
                x=m["x"][ok],
                ra=np.asarray(ra) % 360.0,
                dec=np.asarray(dec),
                ra_err_arcsec=m["err"][ok] * scale[0],
                dec_err_arcsec=m["err"][ok] * scale[1],
                flux=flux,
                snr=m["snr"][ok],
                mag=mag,
                rate_arcsec_per_hour=math.hypot(dx, dy) / hours if hours > 0 else 0.0,
                position_angle_deg=math.degrees(math.atan2(dx, dy)) % 360.0,
                stacked_snr=f["stacked"],
            )
        )
    for k, track in enumerate(tracks):
        track.id = f"AH{k + 1:05d}"
    return tracks
