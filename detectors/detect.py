"""Per-frame candidates: peaks of the matched-filter SNR maps.

A candidate is a local maximum of a difference image's point-source SNR
above a threshold. Two cheap shape tests drop most artifacts before linking:
a cosmic ray or hot pixel is much sharper than the PSF (its peak pixel holds
far more than a point source of the same filtered flux would), and a star
residual is a dipole (a strong negative lobe next to the positive one).
"""

from __future__ import annotations

import math

import numpy as np

from .backend import get_xp, map_frames, to_numpy
from .stats import local_maxima, windows
from .types import Candidates, Differences

__all__ = ["find_candidates"]

#: A peak pixel holding this many times a point source's central value is a
#: cosmic ray or hot pixel, not a star-like source.
MAX_SHARPNESS = 2.5
#: A negative lobe deeper than this fraction of the peak SNR marks a dipole.
DIPOLE_FRACTION = 0.6


def _subpixel(snr: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Refine integer peaks with a 1-D parabola through each axis's 3 samples."""
    h, w = snr.shape
    yc, xc = np.clip(y, 1, h - 2), np.clip(x, 1, w - 2)
    c = snr[yc, xc]

    def offset(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        den = lo - 2 * c + hi
        with np.errstate(invalid="ignore", divide="ignore"):
            off = np.where(den < 0, 0.5 * (lo - hi) / den, 0.0)
        return np.clip(np.nan_to_num(off), -0.5, 0.5)

    dy = offset(snr[yc - 1, xc], snr[yc + 1, xc])
    dx = offset(snr[yc, xc - 1], snr[yc, xc + 1])
    return yc + dy, xc + dx


def find_candidates(diffs: Differences, *, threshold: float, progress=None) -> Candidates:
    """Find point-like positive sources in every difference image.

    Parameters
    ----------
    diffs : Differences
        Output of :func:`detectors.difference.difference_frames`.
    threshold : float, keyword-only
        Minimum matched-filter SNR of a candidate (the ``threshold`` setting).
    progress : callable, optional
        ``progress(done, total)`` after each frame.

    Returns
    -------
    Candidates
        All frames together; empty when nothing passes.
    """
    xp = get_xp(diffs.psi)
    n = diffs.psi.shape[0]

    def frame_candidates(i: int) -> Candidates:
        sigma = float(diffs.psf_sigma[i])
        half = max(2, round(1.5 * sigma))
        # Where most of the PSF is masked, phi is tiny and the SNR meaningless.
        phi = diffs.phi[i]
        covered = phi > 0.3 * xp.median(phi[::4, ::4][phi[::4, ::4] > 0])
        snr_x = xp.where(covered, xp.nan_to_num(diffs.snr(i)), 0.0)
        snr = to_numpy(snr_x)
        y, x = np.nonzero(snr >= threshold)
        y, x = local_maxima(snr, y, x, half)
        peak_snr = snr[y, x]
        # Dipole: a deep negative lobe just beside the peak (a star residual).
        dipole = windows(snr, y, x, half + 1).min(axis=(1, 2)) < -DIPOLE_FRACTION * peak_snr
        flux = to_numpy(diffs.psi[i][y, x] / diffs.phi[i][y, x]).astype(float)
        peak_pixel = to_numpy(xp.nan_to_num(diffs.diff[i])[y, x])
        sharp = peak_pixel * (2 * math.pi * sigma**2) / np.maximum(flux, 1e-30)
        keep = (sharp < MAX_SHARPNESS) & ~dipole & (flux > 0)
        y, x = y[keep], x[keep]
        yf, xf = _subpixel(snr, y, x)
        return Candidates(
            frame=np.full(y.size, i, dtype=np.int64),
            y=yf,
            x=xf,
            flux=flux[keep],
            snr=peak_snr[keep].astype(float),
        )

    found = []
    for i, c in enumerate(map_frames(frame_candidates, n, xp)):
        found.append(c)
        if progress:
            progress(i + 1, n)
    return Candidates(
        **{
            k: np.concatenate([getattr(c, k) for c in found])
            for k in ("frame", "y", "x", "flux", "snr")
        }
    )
