"""Register: each frame's mapping onto the reference grid, refined on its stars.

A header WCS can be off by pixels (a spacecraft's attitude, a mount's
pointing model) and some frames have none; mapped through such a WCS, stars
do not land on themselves and their residuals link into false tracks. So
every frame is registered on the stars, as Tycho Tracker and Astrometrica
do: stars found with sep in each frame's own pixels are matched with the
reference frame's (a translation vote, then an affine fit with outliers
clipped, on top of the WCS mapping where both frames have one), and the
fitted affine is composed with the WCS mapping, so the image is still
resampled once. A frame whose stars cannot be matched is refused by name.

Cheap by design: a few hundred stars per frame, a vectorised vote over all
pairs, k-d tree matching; the mapping is kept on a coarse grid
(`detectors.types.Registration`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import sep
from scipy.ndimage import uniform_filter
from scipy.spatial import cKDTree

from .align import coarse_grid, coarse_pixel_map, reference_index
from .aperture import winpos
from .backend import Array, map_frames, to_numpy
from .errors import RegistrationError
from .stats import box_background
from .types import Frame, Registration

__all__ = ["MIN_STARS", "fit_affine", "register_frames", "star_catalogue"]

#: Fewest matched stars that register a frame (an affine has 6 parameters).
MIN_STARS = 6
#: Brightest stars used per frame: plenty for an affine, cheap to match.
MAX_STARS = 300
#: Bin of the translation vote, pixels.
_VOTE_BIN = 2.0
#: Star catalogues: sep's detection threshold (sigma) and smallest area (pixels).
_DETECT_SIGMA, _MIN_AREA = 5.0, 5
#: Chi-square (6 dof) above which a star correction of a WCS mapping is applied.
_SIGNIFICANT_CHI2 = 30.0
#: The frame as taken, and turned by 90, 180 and 270 degrees.
_TURNS = tuple(
    np.array(t, dtype=float)
    for t in ([[1, 0], [0, 1]], [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]])
)


def star_catalogue(image: np.ndarray, bad: np.ndarray, *, max_stars: int = MAX_STARS) -> np.ndarray:
    """The brightest stars of one frame in its own pixels, (x, y) rows, brightest first.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame, roughly sky-subtracted, NaN where no data.
    bad : ndarray of bool, shape (H, W)
        Masked pixels (saturated, hot, warm, bad columns), never a star.
    max_stars : int, keyword-only

    Returns
    -------
    ndarray, shape (M, 2)
        Windowed centroids; empty when sep finds nothing.
    """
    bad = bad | ~np.isfinite(image)
    # The sky as sep.Background(bw=bh=64) makes it, compiled and without the GIL.
    back, rms = box_background(np.where(bad, np.float32(np.nan), image).astype(np.float32))
    data = np.where(bad, np.float32(0.0), image - back).astype(np.float32)
    try:
        objs = sep.extract(
            data, _DETECT_SIGMA, err=float(np.median(rms)), mask=bad, minarea=_MIN_AREA
        )
    except Exception:  # sep's object or pixel-stack limits on crowded or blank frames
        return np.zeros((0, 2))
    objs = objs[(objs["flag"] & ~1) == 0]  # deblended is fine; truncated or masked is not
    objs = objs[np.argsort(-objs["flux"])][:max_stars]
    if objs.size == 0:
        return np.zeros((0, 2))
    sigma = np.clip(np.sqrt(objs["a"] * objs["b"]), 0.5, 5.0)
    x, y, flag = winpos(data, objs["x"], objs["y"], sigma)  # sep's, without the GIL
    good = (flag == 0) & (np.hypot(x - objs["x"], y - objs["y"]) < 2.0)
    return np.c_[np.where(good, x, objs["x"]), np.where(good, y, objs["y"])]


def fit_affine(
    src: np.ndarray, dst: np.ndarray, *, clip: float = 3.0, floor: float = 0.1
) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares affine ``dst = src @ A[:, :2].T + A[:, 2]`` with outliers clipped.

    Parameters
    ----------
    src, dst : ndarray, shape (M, 2)
        Matched (x, y) positions, M >= 3.
    clip : float, keyword-only
        Points further than ``clip`` robust sigmas (at least ``floor`` px) are dropped.

    Returns
    -------
    matrix : ndarray, shape (2, 3)
    inlier : ndarray of bool, shape (M,)
    rms : float
        RMS distance of the inliers from the fit, pixels.
    """
    inlier = np.ones(len(src), dtype=bool)
    design = np.c_[src, np.ones(len(src))]
    for _ in range(5):
        coef = np.linalg.lstsq(design[inlier], dst[inlier], rcond=None)[0]
        resid = np.hypot(*(design @ coef - dst).T)
        scale = max(floor, 1.4826 * float(np.median(resid[inlier])))
        new = resid < clip * scale
        if new.sum() < 3 or np.array_equal(new, inlier):
            break
        inlier = new
    rms = float(np.sqrt(np.mean(resid[inlier] ** 2)))
    return coef.T, inlier, rms


def _apply(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return xy @ matrix[:, :2].T + matrix[:, 2]


def _vote(pred: np.ndarray, stars: np.ndarray, max_shift: float) -> tuple[np.ndarray, int]:
    """The translation most star pairs agree on, and how many agree (2-pixel bins)."""
    d = (stars[None, :, :] - pred[:, None, :]).reshape(-1, 2)
    d = d[np.all(np.abs(d) < max_shift, axis=1)]
    nbin = max(1, math.ceil(2 * max_shift / _VOTE_BIN))
    hist, ex, ey = np.histogram2d(d[:, 0], d[:, 1], bins=nbin, range=[[-max_shift, max_shift]] * 2)
    hist = uniform_filter(hist, size=2, mode="constant") * 4  # a peak split over bins
    i, j = np.unravel_index(int(np.argmax(hist)), hist.shape)
    near = np.all(np.abs(d - [ex[i], ey[j]]) <= 1.5 * _VOTE_BIN, axis=1)
    if not near.any():
        return np.zeros(2), 0
    return np.median(d[near], axis=0), round(float(hist[i, j]))


def _match(
    pred: np.ndarray, stars: np.ndarray, *, max_shift: float, centre: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Affine from predicted reference-star positions to the frame's stars.

    The vote finds the translation (trying the frame turned by 90, 180 and
    270 degrees when the straight vote is weak: a German mount's meridian
    flip); matches within a shrinking radius then fit the affine.

    Returns
    -------
    matrix : ndarray, shape (2, 3)
        Maps predicted positions onto the frame's own pixels.
    used : ndarray, shape (M, 2)
        Predicted positions of the matched stars (inliers of the final fit).
    rms : float
    """
    best = None
    for turn in _TURNS:
        base = np.c_[turn, centre - turn @ centre]
        shift, votes = _vote(_apply(base, pred), stars, max_shift)
        if best is None or votes > best[1]:
            best = (base + np.c_[np.zeros((2, 2)), shift], votes)
        if votes >= max(MIN_STARS, 0.2 * min(len(pred), len(stars))):
            break
    assert best is not None  # _TURNS is not empty
    matrix, votes = best
    none = np.zeros((0, 2))
    if votes < MIN_STARS:
        return matrix, none, math.nan
    tree = cKDTree(stars)
    # Shrinking radii: chance pairs of a wrong field do not survive 1 pixel.
    for radius in (3 * _VOTE_BIN, 2.0, 1.0):
        dist, idx = tree.query(_apply(matrix, pred), distance_upper_bound=radius)
        ok = np.isfinite(dist)
        # one frame star per reference star: keep the nearest claimant
        order = np.argsort(dist[ok])
        _, first = np.unique(idx[ok][order], return_index=True)
        src_i = np.flatnonzero(ok)[order][first]
        if src_i.size < MIN_STARS:
            return matrix, none, math.nan
        matrix, inlier, rms = fit_affine(pred[src_i], stars[idx[src_i]])
        if inlier.sum() < MIN_STARS:
            return matrix, none, math.nan
    return matrix, pred[src_i][inlier], rms


def _significant(matrix: np.ndarray, used: np.ndarray, rms: float) -> bool:
    """Whether an affine correction differs from none by more than its own noise.

    A WCS that is already right (a good plate solution) is kept as it is:
    a correction fitted to a few dozen centroids would only add their noise.
    Chi-square of the six parameters against the identity, threshold 30
    (a chance of 3e-5 for 6 degrees of freedom).
    """
    design = np.c_[used, np.ones(len(used))]
    sigma2 = max(rms, 0.01) ** 2 / 2.0  # per coordinate
    inverse = design.T @ design / sigma2
    delta = matrix - np.eye(2, 3)
    return float(sum(d @ inverse @ d for d in delta)) > _SIGNIFICANT_CHI2


def register_frames(
    frames: list[Frame],
    native: Sequence[Array],
    bad: Sequence[Array],
    *,
    max_shift: float | None = None,
    progress=None,
) -> Registration:
    """Map every frame onto the reference grid: its WCS, corrected on the stars.

    Parameters
    ----------
    frames : list of Frame
        Time-ordered frames of one field; ``Frame.wcs`` may be None.
    native : list of arrays, shape (H_k, W_k)
        Each frame, roughly sky-subtracted, in its own pixels (NumPy or CuPy).
    bad : list of bool arrays
        Each frame's masked pixels (warm and hot pixels, saturation, ...).
    max_shift : float, keyword-only
        Largest offset, pixels, between where the WCS (or, without one, the
        reference frame's pixel grid) puts a star and where it is; default
        half the smaller side of the reference frame.
    progress : callable, optional
        ``progress(done, total)`` after each frame.

    Returns
    -------
    Registration
        The reference is the frame nearest the middle of the sequence.

    Raises
    ------
    RegistrationError
        A frame whose stars do not match the reference frame's (another
        field, clouds, a trailed or blank exposure), or frames without a
        WCS when the reference frame shows too few stars to place them.
        When most frames fail, the reference frame is the one named: it is
        the odd one out, and leaving it out lets another frame be the reference.
    """
    ref = reference_index(frames)
    shape = frames[ref].shape
    gy, gx = coarse_grid(shape)
    max_shift = 0.5 * min(shape) if max_shift is None else max_shift
    cats = map_frames(
        lambda k: star_catalogue(to_numpy(native[k]), to_numpy(bad[k])), len(frames), np
    )
    ref_stars = cats[ref][:MAX_STARS]
    centre = np.array([(shape[1] - 1) / 2, (shape[0] - 1) / 2])
    n = len(frames)
    map_y, map_x = np.empty((n, gy.size, gx.size)), np.empty((n, gy.size, gx.size))
    method, matched, rms = [""] * n, np.zeros(n, dtype=int), np.full(n, np.nan)
    ref_wcs = frames[ref].wcs
    failed: list[int] = []
    for k, frame in enumerate(frames):
        with_wcs = frame.wcs is not None and ref_wcs is not None
        if with_wcs and k != ref:
            sy, sx = coarse_pixel_map(frame.wcs, ref_wcs, gy, gx)
        else:
            sy, sx = np.meshgrid(gy, gx, indexing="ij")
        method[k] = "reference" if k == ref else "wcs+stars" if with_wcs else "stars"
        if k != ref:
            pred = _predicted(ref_stars, gy, gx, sy, sx)
            h, w = frame.shape
            inside = np.sum(
                (pred[:, 0] > 0) & (pred[:, 0] < w - 1) & (pred[:, 1] > 0) & (pred[:, 1] < h - 1)
            )
            if inside < 2 * MIN_STARS and with_wcs:
                method[k] = "wcs"  # a sparse field: nothing to correct the WCS on
            else:
                matrix, used, rms[k] = _match(pred, cats[k], max_shift=max_shift, centre=centre)
                matched[k] = len(used)
                if matched[k] < MIN_STARS:
                    failed.append(k)
                    continue
                if with_wcs and not _significant(matrix, used, rms[k]):
                    method[k] = "wcs"  # the stars agree with the WCS
                else:
                    moved = _apply(matrix, np.c_[sx.ravel(), sy.ravel()])
                    sx, sy = moved[:, 0].reshape(sx.shape), moved[:, 1].reshape(sy.shape)
        map_y[k], map_x[k] = sy, sx
        if progress:
            progress(k + 1, n)
    if failed:
        # Most frames disagreeing with the reference: the reference is the odd one out.
        odd = ref if len(failed) >= max(2, (n - 1) / 2) else failed[0]
        message = (
            _refusal(frames, odd, failed[0], len(cats[failed[0]]), int(matched[failed[0]]))
            if odd == ref
            else _refusal(frames, odd, ref, len(ref_stars), int(matched[odd]))
        )
        raise RegistrationError(message, frame=frames[odd].name)
    return Registration(
        ref=ref,
        grid_y=gy,
        grid_x=gx,
        map_y=map_y,
        map_x=map_x,
        origin=np.array([f.origin for f in frames], dtype=int),
        method=method,
        stars=matched,
        rms_px=rms,
    )


def _predicted(
    stars: np.ndarray, gy: np.ndarray, gx: np.ndarray, sy: np.ndarray, sx: np.ndarray
) -> np.ndarray:
    """Reference stars carried through the coarse map into a frame's pixels (bilinear)."""
    from scipy.interpolate import RegularGridInterpolator

    points = np.c_[stars[:, 1], stars[:, 0]]
    fx = RegularGridInterpolator((gy, gx), sx, bounds_error=False, fill_value=None)(points)
    fy = RegularGridInterpolator((gy, gx), sy, bounds_error=False, fill_value=None)(points)
    return np.c_[fx, fy]


def _refusal(frames: list[Frame], k: int, ref: int, n_ref: int, matched: int) -> str:
    """Why frame ``k`` does not register on frame ``ref`` (``n_ref`` stars, ``matched`` found)."""
    name, ref_name = frames[k].name, frames[ref].name
    if n_ref < MIN_STARS:
        return (
            f"{name}: cannot be registered: the reference frame {ref_name} shows only {n_ref} "
            f"stars (at least {MIN_STARS} needed) and {name} has no WCS to place it; "
            "plate-solve the frames, or search a longer exposure or a richer field."
        )
    return (
        f"{name}: cannot be registered on the stars of {ref_name} "
        f"({matched} of {n_ref} stars matched, at least {MIN_STARS} needed): it may show "
        "another field or be clouded, trailed or blank; remove it, or leave it out with "
        "--skip-bad."
    )
