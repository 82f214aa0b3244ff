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
threshold set from that map's own measured noise are refined by maximising
the exact inverse-variance stacked SNR over position and motion, and checked
like any other track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtri_exp

from .backend import Array, get_ndimage, get_xp, to_numpy
from .budget import fastest_useful_rate, plan_faint
from .stack import STACKERS, best_motions, sample_stack
from .stats import local_maxima, mad_std
from .types import FWHM_PER_SIGMA, Differences, Mover

__all__ = ["FaintResult", "FaintSettings", "find_faint", "motion_grid", "shift_table"]

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


@dataclass
class _Refined:
    """A grid peak after refinement: trajectory ``(y0, x0, vy, vx)`` and its per-frame samples."""

    params: np.ndarray
    stacked: float
    psi: np.ndarray
    phi: np.ndarray
    frame_snr: np.ndarray


@dataclass
class FaintResult:
    """Verified faint movers and what the search cost."""

    movers: list[Mover]
    trajectories: int
    motions: int
    threshold: float
    binning: int
    rate_max: float = math.inf
    limited_by: str | None = None


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


def _masked(diffs: Differences, sigma: float) -> tuple[Array, Array, Array]:
    """Per-frame SNR, psi and phi maps with single-frame outliers masked (zero).

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
    zero = xp.float32(0.0)
    return (
        xp.where(ok, snr, zero).astype(xp.float32),
        xp.where(ok, diffs.psi, zero),
        xp.where(ok, diffs.phi, zero),
    )


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
    # Imported here: scipy.optimize and scipy.stats take 0.6 s to import, and
    # a per-frame search (--no-faint) never gets here.
    from scipy.optimize import minimize
    from scipy.stats import chi2 as chi2_dist

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
    consistent = chi2_dist.sf(chi2, has.sum() - 1) >= cfg.min_flux_consistency
    speed = math.hypot(params[2], params[3])
    if (
        share > cfg.max_frame_share
        or positive < 0.7
        or not consistent
        or not cfg.rate_min <= speed <= cfg.rate_max
    ):
        return None
    return _Refined(params=params, stacked=stacked, psi=psi, phi=phi, frame_snr=frame_snr)


def find_faint(
    diffs: Differences,
    mjd: np.ndarray,
    *,
    settings: FaintSettings,
    stacker: str | None = None,
    progress=None,
) -> FaintResult:
    """Search every motion of the rate range for objects too faint for single frames.

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
    FaintResult
        ``movers``: one `Mover` per verified object (positions from the
        motion fit).
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
    if plan.rate_max <= settings.rate_min:
        return FaintResult(
            movers=[], trajectories=0, motions=0, threshold=math.inf, binning=plan.binning,
            rate_max=plan.rate_max, limited_by=plan.limited_by,
        )  # fmt: skip
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
    snr, psi, phi = _masked(diffs, sigma)
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
    ys, xs = ys[keep], xs[keep]
    motion_of = best_motions(snr, shifts, 1.0 / noise, ys, xs)
    ys, xs = ys * binning + (binning - 1) / 2, xs * binning + (binning - 1) / 2
    step = float(np.min(np.diff(np.unique(motions[:, 0])))) if len(motions) > 1 else 1.0
    movers = []
    for y, x, m in zip(ys, xs, motion_of, strict=True):
        vy, vx = motions[m]
        seed = np.array([y, x, vy, vx], dtype=float)
        relative = noise[m] / (math.sqrt(n) * frame_noise)
        found = _refine(seed, (psi, phi), t, settings, step, relative, binning, threshold)
        if found is not None:
            movers.append(_as_mover(found, t, sigma))
    return FaintResult(
        movers=movers,
        trajectories=int(len(motions) * snr.shape[1] * snr.shape[2]),
        motions=len(motions),
        threshold=threshold,
        binning=binning,
        rate_max=plan.rate_max,
        limited_by=plan.limited_by,
    )


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
