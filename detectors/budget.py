"""What a search may cost, planned before anything is allocated.

A request's rate range and field size set the size of every array of the
search. A rate range far beyond what the frames can show (an object faster
than the field's diagonal per sequence is in too few frames to be found), or
a faint search over more motions than a machine can test, would otherwise
allocate tens of gigabytes. So the search is planned here, from shapes and
times alone: the fastest useful motion, the faint search's motions and
start-pixel binning within a trajectory budget and a memory budget, and the
per-frame path's memory, which is refused with a clear message when even
that does not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError

__all__ = [
    "FaintPlan",
    "fastest_useful_rate",
    "motion_step",
    "per_frame_bytes",
    "plan_faint",
]

#: float32 bytes.
_F4 = 4
#: (N, H, W) float32 cubes alive at once in the per-frame path: aligned
#: images and masks, scaled frames/differences, psi, phi, and the native frames.
PER_FRAME_CUBES = 7
#: Extra (N, H, W) cubes of the faint search: the masked SNR, psi and phi maps.
FAINT_CUBES = 3
#: Most start-pixel binning the faint search uses (depth falls fast beyond it).
MAX_BINNING = 4


def per_frame_bytes(n: int, h: int, w: int) -> float:
    """Peak bytes of aligning and differencing ``n`` frames of ``h`` x ``w``."""
    return float(PER_FRAME_CUBES * n * h * w * _F4)


def check_per_frame(n: int, h: int, w: int, *, budget_bytes: float) -> None:
    """Raise `InputError` when the per-frame path alone exceeds the memory budget."""
    need = per_frame_bytes(n, h, w)
    if need > budget_bytes:
        raise InputError(
            f"memory: {n} frames of {w}x{h} px need about {need / 1e9:.1f} GB, over the "
            f"per-job budget of {budget_bytes / 1e9:.1f} GB (memory_gb, "
            "ASTROHUNTER_JOB_MEMORY_GB); search a smaller field or fewer frames"
        )


def fastest_useful_rate(mjd: np.ndarray, shape: tuple[int, int], *, frames: int) -> float:
    """The fastest motion (px/day) that can stay on the image for ``frames`` frames.

    Faster objects cross the field's diagonal before ``frames`` exposures
    are taken, in the quickest run of consecutive frames, so no search can
    link or stack them.
    """
    t = np.sort(np.asarray(mjd, dtype=float))
    k = max(2, min(frames, t.size))
    quickest = float(np.min(t[k - 1 :] - t[: t.size - k + 1]))
    return math.hypot(*shape) / max(quickest, 1e-9)


def motion_step(t: np.ndarray, *, sigma: float, max_loss: float) -> float:
    """Spacing (px/day) of the faint search's motion lattice (see `faint.motion_grid`)."""
    reach = float(np.max(np.abs(t)))
    worst_miss = 2.0 * sigma * math.sqrt(-math.log(1.0 - 2.0 * max_loss))
    return math.sqrt(2.0) * worst_miss / max(reach, 1e-9)


def _motions(rate_min: float, rate_max: float, step: float) -> float:
    """Lattice points in the annulus of rates (a slight over-estimate)."""
    return math.pi * ((rate_max + step) ** 2 - max(rate_min - step, 0.0) ** 2) / step**2 + 1.0


@dataclass(frozen=True)
class FaintPlan:
    """The faint search as it will run.

    Attributes
    ----------
    rate_max : float
        Fastest motion searched, px/day (may be below the request's).
    binning : int
        Start pixels binned ``binning`` x ``binning``.
    motions : float
        Motions of the lattice (estimate).
    bytes : float
        Peak bytes of the search's arrays (estimate).
    limited_by : str or None
        Why ``rate_max`` is below the request's: ``"field"`` (faster objects
        leave the field), ``"trajectories"`` (the time budget) or ``"memory"``;
        None when the request is searched whole.
    """

    rate_max: float
    binning: int
    motions: float
    bytes: float
    limited_by: str | None


def _cost(
    n: int, h: int, w: int, t: np.ndarray, rate_min: float, rate_max: float, step: float, b: int
) -> tuple[float, float]:
    """(trajectories, bytes) of the faint search with ``b`` x ``b`` start pixels."""
    motions = _motions(rate_min, rate_max, step)
    pad = rate_max * float(np.max(np.abs(t))) / b
    axis = 2.0 * rate_max / step + 2.0
    grid = axis * axis * 8 * 4  # the lattice is built as a square, then cut to the annulus
    padded = n * (h / b + 2 * pad) * (w / b + 2 * pad) * _F4
    maps = FAINT_CUBES * n * h * w * _F4
    return motions * (h / b) * (w / b), grid + padded + maps + motions * n * 2 * 8


def plan_faint(
    *,
    shape: tuple[int, int],
    t: np.ndarray,
    sigma: float,
    rate_min: float,
    rate_max: float,
    useful_max: float,
    max_loss: float,
    max_trajectories: float,
    budget_bytes: float,
) -> FaintPlan:
    """The widest rate range and the finest binning that fit both budgets.

    Binning grows (up to `MAX_BINNING`) before the rate range shrinks; the
    range shrinks by bisection until trajectories and bytes fit.

    Parameters
    ----------
    shape : (H, W)
    t : ndarray, shape (N,)
        Frame times from the middle of the sequence, days.
    sigma : float
        PSF sigma, px.
    rate_min, rate_max : float
        The request's range, px/day.
    useful_max : float
        `fastest_useful_rate` over the whole sequence.
    max_loss, max_trajectories, budget_bytes : float
        The lattice's SNR loss, and the two budgets.
    """
    h, w = shape
    n = len(t)
    step = motion_step(t, sigma=sigma, max_loss=max_loss)
    limited_by = "field" if useful_max < rate_max else None
    top = min(rate_max, useful_max)

    def fits(rate: float) -> tuple[bool, int, str | None]:
        for b in range(1, MAX_BINNING + 1):
            trajectories, size = _cost(n, h, w, t, rate_min, rate, step, b)
            if trajectories <= max_trajectories and size <= budget_bytes:
                return True, b, None
        return False, MAX_BINNING, "trajectories" if trajectories > max_trajectories else "memory"

    ok, binning, why = fits(top)
    if not ok:
        lo, hi = rate_min, top
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if fits(mid)[0]:
                lo = mid
            else:
                hi = mid
        top, limited_by = lo, why
        binning = fits(top)[1]
    motions = _motions(rate_min, top, step)
    return FaintPlan(
        rate_max=top,
        binning=binning,
        motions=motions,
        bytes=_cost(n, h, w, t, rate_min, top, step, binning)[1],
        limited_by=limited_by,
    )
