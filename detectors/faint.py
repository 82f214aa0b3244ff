"""Faint search: synthetic tracking (shift-and-stack over a grid of motions).

Frame-by-frame detection needs an object to stand out in single frames
(per-frame SNR about 4-5). Summing the frames along the object's motion
raises its SNR by about sqrt(N), so objects at per-frame SNR 2-3 can be
found - but the motion is unknown, so every motion of the rate range is
tried for every start pixel at once. This is what KBMOD does on GPUs.

The search statistic of a trajectory is the sum of the per-frame
point-source SNR maps along it, in units of that motion's measured noise
(frames share a template, so slow motions sum correlated noise). Before
stacking, everything brighter than ``MASK_SIGMA`` in one frame - cosmic rays,
streaks, star residuals, and movers bright enough for the per-frame path -
is masked with its wings, so no artifact can carry a trajectory and the
stacked noise stays near Gaussian. The grid of motions is spaced from the PSF
and the time span so that no motion in the range loses more than
``max_loss`` of its stacked SNR. Peaks of the best-over-motions map above a
threshold set from that map's own measured noise are the seeds that
`detectors.faint_verify` refines and checks: this module scans the pixels
(the fast detector's work, on the GPU when there is one), that one reads the
maps only along each seed's trajectory (the detailed detector's, on the CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtri_exp

from .backend import Array, get_ndimage, get_xp, to_numpy
from .budget import fastest_useful_rate, plan_faint
from .stack import STACKERS, best_motions
from .stats import local_maxima, mad_std
from .types import FWHM_PER_SIGMA, Differences

__all__ = [
    "FaintSeeds",
    "FaintSettings",
    "kept_maps",
    "motion_grid",
    "scan_faint",
    "shift_table",
    "tail_threshold",
]

#: Pixels beyond +-MASK_SIGMA in one frame's SNR map are masked, with their wings.
MASK_SIGMA = 5.0


@dataclass(frozen=True, kw_only=True)
class FaintSettings:
    """The faint search's knobs (rates in pixels per day).

    Grid peaks above the level that noise reaches ``false_tracks`` times per
    megapixel (the statistic the level was measured on) are refined and
    checked; refined tracks must stay above that level and
    ``min_stacked_snr`` (a noise peak that a coarse grid point happened to
    flatter falls back when refined), draw no more
    than ``max_frame_share`` of their flux from one frame, and have per-frame
    fluxes consistent with one constant flux (chi-square probability at
    least ``min_flux_consistency``). Above
    ``max_trajectories`` (about 45 s at the 1.1e9 trajectories/s of two
    CPU cores) start pixels are binned 2x2 (or more), trading depth for time;
    beyond 4x4, or above ``memory_bytes``, the rate range is narrowed
    (`detectors.budget.plan_faint`) and the result says so.
    """

    rate_min: float
    rate_max: float
    max_loss: float = 0.05
    false_tracks: float = 0.3
    min_stacked_snr: float = 5.0
    max_frame_share: float = 0.35
    min_flux_consistency: float = 1e-3
    max_trajectories: float = 5e10
    memory_bytes: float = 6e9


def motion_grid(
    t: np.ndarray, *, rate_min: float, rate_max: float, sigma: float, max_loss: float = 0.05
) -> np.ndarray:
    """Motions (px/day, ``(vy, vx)``) covering the rate range, spaced from the PSF.

    A trajectory whose motion is off by ``dv`` misses the object by
    ``dv * |t|`` in each frame; a point source's matched-filter response
    falls as ``exp(-d^2 / (4 sigma^2))``. The lattice spacing puts the worst
    miss, at the sequence's ends, where that response is ``1 - 2 max_loss``,
    so the loss averaged over the frames stays near ``max_loss``.

    Parameters
    ----------
    t : ndarray, shape (N,)
        Frame times relative to the reference time (days).
    rate_min, rate_max : float, keyword-only
        Motion range, pixels per day.
    sigma : float, keyword-only
        PSF sigma, pixels.
    max_loss : float, keyword-only
        Tolerated stacked-SNR loss from the grid.

    Returns
    -------
    ndarray, shape (M, 2)
    """
    reach = float(np.max(np.abs(t)))
    worst_miss = 2.0 * sigma * math.sqrt(-math.log(1.0 - 2.0 * max_loss))
    step = math.sqrt(2.0) * worst_miss / reach
    axis = np.arange(-rate_max, rate_max + step, step)
    vy, vx = np.meshgrid(axis, axis, indexing="ij")
    speed = np.hypot(vy, vx)
    keep = (speed >= rate_min - step / 2) & (speed <= rate_max + step / 2)
    return np.c_[vy[keep], vx[keep]]


def shift_table(motions: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Integer pixel offsets ``(dy, dx)`` of every frame for every motion: (M, N, 2)."""
    return np.rint(motions[:, None, :] * t[None, :, None]).astype(np.int64)


def _kept(diffs: Differences, sigma: float) -> tuple[Array, Array]:
    """Per-frame SNR maps with single-frame outliers masked (zero), and the mask of kept pixels.

    A faint mover never reaches ``MASK_SIGMA`` in most of its frames; what
    does is an artifact or an object the per-frame path finds anyway. The
    mask grows by two PSF widths so that an outlier's wings go with it.
    """
    xp = get_xp(diffs.psi)
    ndi = get_ndimage(xp)
    ok = diffs.phi > 0
    snr = xp.where(ok, diffs.psi / xp.sqrt(xp.where(ok, diffs.phi, 1.0)), 0.0)
    size = 2 * max(1, math.ceil(2.0 * sigma)) + 1
    ok &= ~_on_static_sources(diffs, sigma)[None]
    for k in range(snr.shape[0]):
        ok[k] &= ~ndi.maximum_filter(xp.abs(snr[k]) > MASK_SIGMA, size=size)
    return xp.where(ok, snr, xp.float32(0.0)).astype(xp.float32), ok


def kept_maps(diffs: Differences, kept: Array) -> tuple[Array, Array]:
    """The psi and phi maps the faint search refines on: zero outside ``kept``."""
    xp = get_xp(diffs.psi)
    zero = xp.float32(0.0)
    return xp.where(kept, diffs.psi, zero), xp.where(kept, diffs.phi, zero)


def _on_static_sources(diffs: Differences, sigma: float) -> Array:
    """Pixels on stars and galaxies brighter than one frame's noise, or by a saturated core.

    A static source's residual changes from frame to frame with the seeing
    by more than the noise, and coherently over its extent: at 2-4 sigma per
    frame it is too faint to mask frame by frame, yet summed along a slow
    motion that skirts a star's wing or runs along a galaxy it looks like a
    faint mover. So the faint search leaves such pixels out: where the
    template (smoothed by the PSF) exceeds the noise of one frame, and within
    3 FWHM of a saturated core (a no-data hole ringed by bright sky).
    """
    xp = get_xp(diffs.template)
    ndi = get_ndimage(xp)
    template = diffs.template
    void = ~xp.isfinite(template)
    sky = xp.nan_to_num(template, nan=0.0)
    # One frame's pixel noise, from phi = 1 / (var 4 pi sigma^2) of the median frame.
    phi = xp.median(diffs.phi[:, ::4, ::4], axis=0)
    frame_noise = 1.0 / math.sqrt(float(xp.median(phi[phi > 0])) * 4 * math.pi * sigma**2)
    bright = ndi.gaussian_filter(sky, sigma) > frame_noise
    saturated = void & ndi.maximum_filter(bright, size=3)
    radius = math.ceil(3 * FWHM_PER_SIGMA * sigma)
    return bright | ndi.maximum_filter(saturated, size=2 * radius + 1)


def tail_threshold(
    peaks: np.ndarray, expected: float, *, ranks: tuple[int, int] = (100, 3000)
) -> float:
    """The level that noise peaks exceed ``expected`` times per field.

    Each motion's sums are in units of its own measured noise, so the peaks
    of the best-over-motions map follow a Gaussian tail: the number above
    ``v`` is ``A * Q(v / s)`` (``Q`` the normal survival function, ``A`` the
    number of effectively independent trajectories, ``s`` near 1). The map's
    own peaks ranked ``ranks[0]`` to ``ranks[1]`` - noise, since real objects
    are few and at the top - fit ``A`` and ``s``, and the fit is followed out
    to ``expected`` peaks. The threshold thus follows the measured noise of
    the stacked images, residual non-Gaussianity included, not an assumed
    distribution.

    Parameters
    ----------
    peaks : ndarray
        Values of the local maxima of the best-over-motions map.
    expected : float
        Noise peaks per field allowed above the threshold.
    ranks : (int, int), keyword-only
        Ranks of the peaks the tail is fitted to.
    """
    v = np.sort(peaks[np.isfinite(peaks)])[::-1]
    rank = np.arange(1, v.size + 1)
    use = (rank >= ranks[0]) & (rank <= ranks[1]) & (v > 0)
    if use.sum() < 20:
        return float(v[0]) if v.size else np.inf
    log_rank, value = np.log(rank[use]), v[use]

    def fit(s: float) -> tuple[float, float]:
        log_a = np.mean(log_rank - log_ndtr(-value / s))
        return float(np.sum((log_rank - log_a - log_ndtr(-value / s)) ** 2)), float(log_a)

    scales = np.linspace(0.7, 2.0, 131)
    s = float(scales[np.argmin([fit(x)[0] for x in scales])])
    log_a = fit(s)[1]
    return float(-s * ndtri_exp(math.log(expected) - log_a))


def _binned(snr: Array, b: int) -> Array:
    """Sum ``b`` x ``b`` blocks of each frame's map (scaled to keep unit noise per block)."""
    if b == 1:
        return snr
    n, h, w = snr.shape
    blocks = snr[:, : h - h % b, : w - w % b].reshape(n, h // b, b, w // b, b)
    return blocks.sum(axis=(2, 4)) / b


def _peaks(best: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of the best-over-motions map above its median."""
    y, x = np.nonzero(best >= np.median(best))
    return local_maxima(best, y, x, half)


@dataclass
class FaintSeeds:
    """Peaks of the faint search's motion grid: what the detailed stage refines and checks.

    Attributes
    ----------
    y, x : ndarray, shape (K,)
        Start position at the sequence's mean time, reference grid (pixels).
    vy, vx : ndarray, shape (K,)
        Grid motion of each peak, pixels per day.
    stacked : ndarray, shape (K,)
        The grid's statistic there (stacked SNR in units of its motion's noise).
    noise : ndarray, shape (K,)
        That motion's measured noise relative to independent frames.
    step : float
        Spacing of the motion grid, pixels per day.
    trajectories, motions : int
        Start pixels times motions searched, and motions.
    threshold : float
        The grid level the seeds passed (and their refinement must keep).
    binning : int
        Side of the start pixels' bins.
    rate_max, limited_by
        Fastest rate searched (px/day) and why, when the budget narrowed it.
    """

    y: np.ndarray
    x: np.ndarray
    vy: np.ndarray
    vx: np.ndarray
    stacked: np.ndarray
    noise: np.ndarray
    step: float
    trajectories: int
    motions: int
    threshold: float
    binning: int
    rate_max: float = math.inf
    limited_by: str | None = None

    def __len__(self) -> int:
        return int(self.y.size)


def scan_faint(
    diffs: Differences,
    mjd: np.ndarray,
    *,
    settings: FaintSettings,
    stacker: str | None = None,
    progress=None,
) -> tuple[FaintSeeds, Array]:
    """Stack every motion of the rate range from every start pixel; keep the grid's peaks.

    This is the part of the faint search that scans pixels;
    :func:`detectors.faint_verify.refine_faint` turns its seeds into movers.

    Parameters
    ----------
    diffs : Differences
        Difference images and their matched-filter maps (NumPy or CuPy).
    mjd : ndarray, shape (N,)
        Mid-exposure time of each frame (days).
    settings : FaintSettings, keyword-only
    stacker : str, keyword-only
        Name in :data:`detectors.stack.STACKERS`; default: ``numba`` for NumPy
        arrays when numba is installed, else ``xp`` (NumPy or CuPy).
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    seeds : FaintSeeds
    kept : bool array, shape (N, H, W), NumPy or CuPy
        Pixels the search used (see :func:`kept_maps`).
    """
    xp = get_xp(diffs.psi)
    n, h, w = diffs.psi.shape
    t = mjd - float(np.mean(mjd))
    sigma = float(np.median(diffs.psf_sigma))
    # Bin the maps, and narrow the rates if need be, to fit the time and memory budgets.
    plan = plan_faint(
        shape=(h, w),
        t=t,
        sigma=sigma,
        rate_min=settings.rate_min,
        rate_max=settings.rate_max,
        useful_max=fastest_useful_rate(mjd, (h, w), frames=n),
        max_loss=settings.max_loss,
        max_trajectories=settings.max_trajectories,
        budget_bytes=settings.memory_bytes,
    )
    none = np.zeros(0)
    if plan.rate_max <= settings.rate_min:
        return FaintSeeds(
            y=none, x=none, vy=none, vx=none, stacked=none, noise=none, step=1.0, trajectories=0,
            motions=0, threshold=math.inf, binning=plan.binning, rate_max=plan.rate_max,
            limited_by=plan.limited_by,
        ), xp.zeros((n, h, w), dtype=bool)  # fmt: skip
    motions = motion_grid(
        t,
        rate_min=settings.rate_min,
        rate_max=plan.rate_max,
        sigma=sigma,
        max_loss=settings.max_loss,
    )
    binning = plan.binning
    shifts = shift_table(motions / binning, t)
    if stacker is None:
        stacker = "numba" if xp is np and "numba" in STACKERS else "xp"
    snr, kept = _kept(diffs, sigma)
    snr = _binned(snr, binning)
    best, noise = STACKERS[stacker](snr, shifts, progress=progress)
    best = to_numpy(best)
    # One frame's scatter in the (binned) maps: binning sums PSF-correlated
    # pixels, so it exceeds 1; the motions' noise is relative to it.
    frame_noise = float(np.median([mad_std(xp.where(f != 0, f, xp.nan)) for f in snr[:, ::2, ::2]]))
    ys, xs = _peaks(best, max(2, round(2 * sigma / binning)))
    values = best[ys, xs]
    mpix = h * w / 1e6
    ranks = (max(10, round(100 * mpix)), max(300, round(3000 * mpix)))
    threshold = tail_threshold(values, settings.false_tracks * mpix, ranks=ranks)
    keep = values >= threshold
    ys, xs, values = ys[keep], xs[keep], values[keep]
    motion_of = np.asarray(best_motions(snr, shifts, 1.0 / noise, ys, xs), dtype=np.int64)
    seeds = FaintSeeds(
        y=ys * binning + (binning - 1) / 2,
        x=xs * binning + (binning - 1) / 2,
        vy=motions[motion_of, 0],
        vx=motions[motion_of, 1],
        stacked=np.asarray(values, dtype=float),
        noise=np.asarray(noise, dtype=float)[motion_of] / (math.sqrt(n) * frame_noise),
        step=float(np.min(np.diff(np.unique(motions[:, 0])))) if len(motions) > 1 else 1.0,
        trajectories=int(len(motions) * snr.shape[1] * snr.shape[2]),
        motions=len(motions),
        threshold=threshold,
        binning=binning,
        rate_max=plan.rate_max,
        limited_by=plan.limited_by,
    )
    return seeds, kept
