"""Faint search, second half: refine each grid peak and check it like any other track.

`detectors.faint` scans every motion from every start pixel and keeps the
peaks of the best-over-motions map (the fast detector's work). Here each
peak is refined by maximising the exact inverse-variance stacked SNR over
position and motion, reading the maps only along its trajectory, and kept
if it looks like one object of constant flux (the detailed detector's work,
on the CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import chdtrc

from .backend import Array
from .faint import FaintSeeds, FaintSettings, kept_maps, scan_faint
from .stack import sample_stack
from .types import Differences, Mover

__all__ = ["find_faint", "refine_faint"]


@dataclass
class _Refined:
    """A grid peak after refinement: trajectory ``(y0, x0, vy, vx)`` and its per-frame samples."""

    params: np.ndarray
    stacked: float
    psi: np.ndarray
    phi: np.ndarray
    frame_snr: np.ndarray


def _stacked(
    params: np.ndarray, maps: tuple[Array, Array], t: np.ndarray, noise: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """Inverse-variance stacked SNR along a trajectory, in units of its motion's noise."""
    y0, x0, vy, vx = params
    psi, phi = sample_stack(*maps, y0 + vy * t, x0 + vx * t)
    total = float(np.sum(phi))
    return (float(np.sum(psi)) / math.sqrt(total) / noise if total > 0 else 0.0), psi, phi


def _refine(
    seed: np.ndarray,
    maps: tuple[Array, Array],
    t: np.ndarray,
    cfg: FaintSettings,
    step: float,
    noise: float,
    binning: int,
    threshold: float,
) -> _Refined | None:
    """Maximise the stacked SNR near a grid peak, then check the result.

    ``noise`` is the seed motion's measured noise relative to independent
    frames; neighbouring motions, which the fit explores, share it closely.
    ``binning`` is the size of the seed's pixel; ``threshold`` the level the
    refined stacked SNR must keep.
    """
    # Imported here: a per-frame search (--no-faint) never gets here.
    from scipy.optimize import minimize

    scale = np.array([0.5 * binning, 0.5 * binning, step / 2, step / 2])

    def cost(z: np.ndarray) -> float:
        return -_stacked(seed + z * scale, maps, t, noise)[0]

    simplex = np.vstack([np.zeros(4), np.eye(4)])  # half a seed pixel, half a grid step each way
    best = minimize(
        cost,
        np.zeros(4),
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 0.02, "fatol": 0.01, "maxiter": 400},
    )
    params = seed + best.x * scale
    stacked, psi, phi = _stacked(params, maps, t, noise)
    has = phi > 0
    if stacked < max(cfg.min_stacked_snr, threshold) or has.sum() < 3:
        return None
    frame_snr = np.where(has, psi / np.sqrt(np.where(has, phi, 1.0)), 0.0)
    # A real object adds a little in every frame; an artifact, a lot in few.
    share = float(np.max(psi[has]) / np.sum(psi[has]))
    positive = float(np.mean(frame_snr[has] > 0))
    # ... and the same flux in every frame, within the noise: a residual of
    # a galaxy or a star's wing comes and goes with the seeing.
    flux = float(np.sum(psi[has]) / np.sum(phi[has]))
    chi2 = float(np.sum((psi[has] - phi[has] * flux) ** 2 / phi[has]))
    consistent = chdtrc(has.sum() - 1, chi2) >= cfg.min_flux_consistency  # chi2 survival
    speed = math.hypot(params[2], params[3])
    if (
        share > cfg.max_frame_share
        or positive < 0.7
        or not consistent
        or not cfg.rate_min <= speed <= cfg.rate_max
    ):
        return None
    return _Refined(params=params, stacked=stacked, psi=psi, phi=phi, frame_snr=frame_snr)


def refine_faint(
    seeds: FaintSeeds,
    maps: tuple[Array, Array],
    mjd: np.ndarray,
    *,
    settings: FaintSettings,
    sigma: float,
    progress=None,
) -> list[Mover]:
    """Refine each grid peak's position and motion, and keep those that pass the checks.

    Reads the maps only along each seed's trajectory (the detailed stage's
    share of the faint search, on the CPU).

    Parameters
    ----------
    seeds : FaintSeeds
        From :func:`scan_faint`.
    maps : (psi, phi)
        The maps the scan kept (:func:`kept_maps`), shape (N, H, W) each.
    mjd : ndarray, shape (N,)
    settings : FaintSettings, keyword-only
    sigma : float, keyword-only
        Median PSF sigma, pixels.
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    list of Mover
        Positions from the motion fit.
    """
    t = mjd - float(np.mean(mjd))
    movers = []
    if progress:
        progress(0, len(seeds))
    for k in range(len(seeds)):
        seed = np.array([seeds.y[k], seeds.x[k], seeds.vy[k], seeds.vx[k]], dtype=float)
        found = _refine(
            seed, maps, t, settings, seeds.step, float(seeds.noise[k]), seeds.binning,
            seeds.threshold,
        )  # fmt: skip
        if found is not None:
            movers.append(_as_mover(found, t, sigma))
        if progress:
            progress(k + 1, len(seeds))
    return movers


def find_faint(
    diffs: Differences,
    mjd: np.ndarray,
    *,
    settings: FaintSettings,
    stacker: str | None = None,
    progress=None,
) -> tuple[FaintSeeds, list[Mover]]:
    """Search every motion of the rate range for objects too faint for single frames.

    :func:`scan_faint` then :func:`refine_faint`, in one call (the search
    stages split them between the fast and the detailed detector).

    Returns
    -------
    seeds : FaintSeeds
        The grid's peaks and what the scan cost (trajectories, threshold, binning).
    movers : list of Mover
        One per verified object (positions from the motion fit).
    """
    seeds, kept = scan_faint(diffs, mjd, settings=settings, stacker=stacker, progress=progress)
    movers = refine_faint(
        seeds,
        kept_maps(diffs, kept),
        mjd,
        settings=settings,
        sigma=float(np.median(diffs.psf_sigma)),
    )
    return seeds, movers


def _as_mover(found: _Refined, t: np.ndarray, sigma: float) -> Mover:
    """Per-frame positions from the fitted motion, with errors from the stacked SNR.

    At per-frame SNR 2-3 a single frame cannot locate the object, so its
    position in every frame comes from the motion fit: the error at the
    middle time is that of one detection at the stacked SNR, and grows away
    from it as the motion's error does.
    """
    y0, x0, vy, vx = found.params
    has = found.phi > 0
    err0 = math.sqrt(2.0) * sigma / found.stacked
    t_rms = math.sqrt(float(np.mean(t[has] ** 2))) or 1.0
    err = err0 * np.sqrt(1.0 + (t / t_rms) ** 2)
    frames = np.flatnonzero(has)
    flux = np.where(has, found.psi / np.where(has, found.phi, 1.0), np.nan)
    return Mover(
        frames=frames,
        x=(x0 + vx * t)[frames],
        y=(y0 + vy * t)[frames],
        err=err[frames],
        flux=flux[frames],
        snr=found.frame_snr[frames],
        stacked=found.stacked,
        vel=(float(vx), float(vy)),
    )
