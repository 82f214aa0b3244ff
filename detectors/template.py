"""Templates: the static sky a frame is differenced against, from another night or not.

A template made of the same night's frames holds every mover that stays
inside its own PSF over the night (1-4 arcsec/h over an hour or two), so
the difference subtracts it. Surveys avoid that with a template from
another night, when such movers were elsewhere. :func:`reference_template`
builds one from frames of the same field taken at another time (or one
deep coadd): each is registered onto the reference grid (its WCS, refined
on the stars), resampled, freed of its own artefacts (saturated stars,
cosmic rays, detector defects), scaled to the reference frame's flux and
combined. PSF matching against each night frame happens where every
difference is made (`detectors.difference`), which blurs whichever of the
two is sharper.

Without another night, :func:`exclusion_templates` gives each frame a
template of the frames taken far enough from it in time that a mover at
the slowest separable rate no longer overlaps itself.

Conventions as in `detectors.types`: ``[y, x]``, NaN = no data, ADU of the
reference frame, UTC MJD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from .align import _is_identity, coarse_grid, coarse_pixel_map, resample
from .backend import Array, get_ndimage, get_xp, map_frames, to_numpy
from .difference import TemplateBuilder, _aperture_flux, _flux_scale, _psf_sigma, measure_stars
from .errors import InputError
from .masks import frame_masks
from .register import MIN_STARS, _apply, _match, _predicted, star_catalogue
from .stats import box_background, mad_std, stack_median
from .types import FWHM_PER_SIGMA, Frame, Registration

__all__ = [
    "MIN_COVERAGE",
    "ReferenceTemplate",
    "cosmic_ray_mask",
    "exclusion_sets",
    "exclusion_templates",
    "mismatch_variance",
    "reference_template",
    "same_night_info",
    "separable_gap",
]

#: Fewest of the reference grid's pixels a template file must cover.
MIN_COVERAGE = 0.5
#: Shift, pixels, of the template's structure against the night's that its
#: variance allows for (registration, scattered light and ghosts that moved).
MISMATCH_PX = 0.5
#: Weight of the extended mismatch (its PSF-smoothed, binned, median-filtered
#: amplitude underestimates what the matched filter picks up along an arc).
MISMATCH_EXTENDED = 3.0
#: Template extended light (16-pixel background) above this many of its own
#: robust sigmas marks halos and ghosts, where the night's median may differ.
_HALO_SIGMA = 5.0
#: Robust sigmas above its neighbours that make a lone sharp pixel a cosmic ray.
_CR_SIGMA = 6.0


@dataclass
class ReferenceTemplate:
    """A template from another night on the reference grid.

    Attributes
    ----------
    image : xp array, shape (H, W), float32
        Background-subtracted static sky in the reference frame's ADU, NaN
        where no template file has data or its own artefacts were masked.
    info : dict
        JSON-safe description for the ``run`` block: ``kind``, ``files``,
        ``frames``, ``coverage``, ``psf_fwhm_px``, ``noise_ratio`` (template
        sky noise over the reference frame's) and ``limiting_mag_5sigma``.
    """

    image: Array
    info: dict = field(default_factory=dict)

    def builder(self) -> TemplateBuilder:
        """The seam of `detectors.difference.difference_frames`: this template for every frame."""

        def build(subs: Array, median: Array, fwhm: float) -> tuple[Array, Array | None]:
            return self.image, mismatch_variance(self.image, median, fwhm / FWHM_PER_SIGMA)

        return build


def cosmic_ray_mask(image: Array, rms: float, *, grow: int = 1) -> Array:
    """Pixels far sharper than any star: cosmic-ray hits and hot pixels of one exposure.

    A pixel is flagged when it stands ``_CR_SIGMA`` sky sigmas above the mean
    of its eight neighbours and those hold under 30 % of its value (a star's
    core holds about half, even in sharp seeing); the flag grows by ``grow``
    pixels to take the hit's fainter edge.

    Parameters
    ----------
    image : array, shape (H, W)
        Background-subtracted image, NaN where no data.
    rms : float
        Its sky noise.

    Returns
    -------
    array of bool, shape (H, W)
    """
    xp = get_xp(image)
    ndi = get_ndimage(xp)
    data = xp.nan_to_num(image)
    kernel = xp.ones((3, 3), dtype=xp.float32) / 8.0
    kernel[1, 1] = 0.0
    around = ndi.convolve(data, kernel, mode="nearest")
    hit = ((data - around) > _CR_SIGMA * rms) & (around < 0.3 * data)
    if grow and bool(hit.any()):
        hit = ndi.maximum_filter(hit.astype(xp.uint8), size=2 * grow + 1) > 0
    return hit


def _grid_map(
    frame: Frame, reference: Frame, ref_stars: np.ndarray, native: np.ndarray, bad: np.ndarray
) -> Registration:
    """Where each reference pixel falls in a template frame (refused when it covers too little)."""
    if frame.wcs is None or reference.wcs is None:
        missing = frame.name if frame.wcs is None else f"the reference frame {reference.name}"
        raise InputError(
            f"{frame.name}: a template is placed on the sequence by its WCS, and {missing} "
            "has none; plate-solve it first."
        )
    shape = reference.shape
    gy, gx = coarse_grid(shape)
    try:
        sy, sx = coarse_pixel_map(frame.wcs, reference.wcs, gy, gx)
    except InputError as err:
        raise InputError(f"{frame.name}: {err}; it does not show the searched field") from err
    h, w = frame.shape
    inside = (sy >= 0) & (sy <= h - 1) & (sx >= 0) & (sx <= w - 1)
    coverage = float(inside.mean())
    if coverage < MIN_COVERAGE:
        raise InputError(
            f"{frame.name}: the template covers {100 * coverage:.0f}% of the searched field "
            f"(reference frame {reference.name}; at least {100 * MIN_COVERAGE:.0f}% needed): "
            "it shows another field; give frames of the same field."
        )
    pred = _predicted(ref_stars, gy, gx, sy, sx)
    stars = star_catalogue(native, bad)
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    matrix, used, rms = _match(pred, stars, max_shift=0.1 * min(shape), centre=centre)
    method = "wcs"
    if len(used) >= MIN_STARS:  # refine the WCS on the stars, as for the night's frames
        moved = _apply(matrix, np.c_[sx.ravel(), sy.ravel()])
        sx, sy = moved[:, 0].reshape(sx.shape), moved[:, 1].reshape(sy.shape)
        method = "wcs+stars"
    return Registration.one_frame((gy, gx), (sy, sx), method=method, stars=len(used), rms_px=rms)


def reference_template(
    frames: list[Frame],
    reference: Frame,
    reference_image: Array,
    reference_bad: Array,
    *,
    psf_sigma_guess: float = 1.5,
) -> ReferenceTemplate:
    """A template from another night (or a deep coadd) on the reference frame's grid.

    Parameters
    ----------
    frames : list of Frame
        Frames of the same field from another night, or one coadd; each
        needs a celestial WCS.
    reference : Frame
        The search's reference frame (its WCS and name).
    reference_image, reference_bad : xp arrays, shape (H, W)
        The reference frame on its own grid (aligned) and its mask; the
        array module of ``reference_image`` is used throughout.
    psf_sigma_guess : float, keyword-only
        PSF sigma when too few stars are found to measure it.

    Returns
    -------
    ReferenceTemplate

    Raises
    ------
    InputError
        A template file without a WCS, or one covering under half of the
        searched field (the message names the file).
    """
    if not frames:
        raise InputError("a template needs at least one frame")
    xp = get_xp(reference_image)
    shape = reference.shape
    ref_sub = reference_image - box_background(xp.where(reference_bad, xp.nan, reference_image))[0]
    ref_sub = xp.where(reference_bad, xp.nan, ref_sub)
    ref_rms = mad_std(ref_sub[::2, ::2])
    ref_stars = star_catalogue(to_numpy(ref_sub), to_numpy(reference_bad))
    native = [_level(xp.asarray(f.data, dtype=xp.float32), xp) for f in frames]
    masks = frame_masks(frames, native, xp)
    stack = xp.full((len(frames), *shape), xp.nan, dtype=xp.float32)
    noise = np.ones(len(frames))

    def place(k: int) -> None:
        frame, image, bad = frames[k], native[k], masks[k]
        background, rms_map = box_background(xp.where(bad, xp.nan, image))
        image = image - background
        noise[k] = float(xp.median(rms_map))
        bad = bad | cosmic_ray_mask(xp.where(bad, xp.nan, image), noise[k])
        registration = _grid_map(frame, reference, ref_stars, to_numpy(image), to_numpy(bad))
        if (
            frame.shape == shape
            and registration.method[0] == "wcs"
            and _is_identity(registration, 0)
        ):
            stack[k] = xp.where(bad, xp.nan, image)
        else:
            stack[k] = resample(image, bad, registration, 0, shape, xp)[0]

    map_frames(place, len(frames), xp)
    stars = measure_stars(ref_sub, ref_rms)
    sigma_ref = _psf_sigma(ref_sub, stars, psf_sigma_guess)
    if stars.x.size >= 5:
        sigma = [_psf_sigma(stack[k], stars, sigma_ref) for k in range(len(frames))]
        radius = 2.0 * FWHM_PER_SIGMA * max(sigma_ref, *sigma)
        ref_flux = _aperture_flux(ref_sub, stars, radius)
        for k in range(len(frames)):
            scale = _flux_scale(_aperture_flux(stack[k], stars, radius), ref_flux)
            scale = scale if np.isfinite(scale) and scale > 0.05 else 1.0
            stack[k] /= scale
            noise[k] /= scale
    image = _combine(stack, noise, xp)
    sigma_t = _psf_sigma(image, stars, sigma_ref)
    rms_t = mad_std(image[::2, ::2] - box_background(image)[0][::2, ::2])
    info = {
        "kind": "reference",
        "files": [f.name for f in frames],
        "frames": len(frames),
        "coverage": round(float(xp.isfinite(image).mean()), 4),
        "psf_fwhm_px": round(FWHM_PER_SIGMA * sigma_t, 3),
        "noise_ratio": round(rms_t / ref_rms, 4) if ref_rms > 0 else None,
        "limiting_mag_5sigma": _limiting_mag(reference.zero_point, rms_t, sigma_t),
    }
    return ReferenceTemplate(image=image, info=info)


def mismatch_variance(image: Array, median: Array, sigma: float) -> Array:
    """Variance of what a template from another time leaves that is not a source.

    Two parts, ADU^2 per pixel:

    - a shift ``s`` of the template leaves ``s * |grad T|`` at star cores
      (``MISMATCH_PX``, on the PSF-smoothed template so its noise does not count);
    - scattered light (halos, ghost rings of bright stars) moves between
      nights. The night's own median differs from the template there in
      arcs and patches wider than a star; that extended part of
      ``|median - T|`` (PSF-smoothed, binned 2x2, then median-filtered
      over 3x3 bins, which a point source - a mover sitting in the median -
      does not survive, while an arc or a patch does) is counted as noise
      where it is, ``MISMATCH_EXTENDED`` times over - only near the
      template's own extended light, since elsewhere that difference is
      the night's slow movers, which the template is there to keep.

    Parameters
    ----------
    image : array, shape (H, W)
        The template (reference-frame ADU, background-subtracted).
    median : array, shape (H, W)
        Median of the night's scaled, background-subtracted frames.
    sigma : float
        PSF sigma, pixels.
    """
    xp = get_xp(image)
    ndi = get_ndimage(xp)
    width = max(sigma, 0.5)
    smooth = ndi.gaussian_filter(xp.nan_to_num(image), width, mode="nearest")
    gy = ndi.sobel(smooth, axis=0) / 8.0
    gx = ndi.sobel(smooth, axis=1) / 8.0
    variance = (gy * gy + gx * gx) * MISMATCH_PX**2
    delta = ndi.gaussian_filter(xp.nan_to_num(median - image), width, mode="nearest")
    h, w = delta.shape
    binned = xp.abs(
        delta[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    )
    extended = MISMATCH_EXTENDED * ndi.median_filter(binned, size=3, mode="nearest")
    full = xp.zeros_like(delta)
    full[: h // 2 * 2, : w // 2 * 2] = xp.repeat(xp.repeat(extended, 2, axis=0), 2, axis=1)
    # Only where the template itself shows extended light: elsewhere a
    # difference from the median is the night's own slow movers.
    light = xp.abs(box_background(image, box=16)[0])
    near = ndi.maximum_filter(light, size=33, mode="nearest")
    full = xp.where(near > _HALO_SIGMA * mad_std(light[::4, ::4]), full, 0.0)
    return (variance + full * full).astype(xp.float32)


def _level(image: Array, xp: ModuleType) -> Array:
    """The frame minus its median sky (a rough level for masks and star finding)."""
    sample = image[::4, ::4]
    return image - xp.median(sample[xp.isfinite(sample)])


def _combine(stack: Array, noise: np.ndarray, xp: ModuleType) -> Array:
    """Inverse-variance mean of template frames, positive outliers clipped.

    The template night's own movers, cosmic rays missed by the sharpness test
    and hopping hot pixels stand above the median by far more than a frame's
    noise plus the spread PSF differences give a star's core; they are left
    out. One or two frames are simply averaged.
    """
    weight = xp.asarray(1.0 / noise**2, dtype=xp.float32)[:, None, None]
    if stack.shape[0] >= 3:
        median, _ = stack_median(stack)
        limit = median[None] + 4.0 * xp.asarray(noise, dtype=xp.float32)[:, None, None]
        limit = limit + 0.5 * xp.abs(median)[None]
        stack = xp.where(stack > limit, xp.nan, stack)
    good = xp.isfinite(stack)
    total = xp.sum(xp.where(good, weight, 0.0), axis=0)
    summed = xp.sum(xp.where(good, stack * weight, 0.0), axis=0)
    return xp.where(total > 0, summed / xp.where(total > 0, total, 1.0), xp.nan).astype(xp.float32)


def _limiting_mag(zero_point: float | None, rms: float, sigma: float) -> float | None:
    """5-sigma point-source magnitude for sky noise ``rms`` and PSF ``sigma`` (n_eff = 4 pi s^2)."""
    if zero_point is None or not (rms > 0 and math.isfinite(rms)):
        return None
    return round(zero_point - 2.5 * math.log10(5.0 * rms * math.sqrt(4 * math.pi) * sigma), 3)


def exclusion_templates(
    mjd: np.ndarray, *, rate_px_per_day: float, min_frames: int | None = None
) -> TemplateBuilder:
    """Per-frame templates from frames where a mover has left its own PSF.

    Frame ``i``'s template is the median of the frames ``j`` with
    ``|t_j - t_i| * rate >= 1.5 FWHM``. The rate is the slowest searched
    one, or - when a night is too short for that to leave any frame enough
    others - the slowest rate at which every frame keeps ``min_frames``
    (default half the frames, at least 3): slower movers are then still
    partly subtracted, faster ones not at all, and no template is made of
    so few frames that its noise costs the fast movers more than the
    median did. A frame left with fewer keeps the median of all.

    Parameters
    ----------
    mjd : ndarray, shape (N,)
        Mid-exposure UTC MJD of each frame.
    rate_px_per_day : float, keyword-only
        The slowest searched rate, pixels per day.
    min_frames : int, keyword-only

    Returns
    -------
    TemplateBuilder
        One template per frame (N, H, W), no extra variance (the seam of
        `detectors.difference.difference_frames`).
    """
    mjd = np.asarray(mjd, dtype=float)
    keep = max(3, mjd.size // 2) if min_frames is None else min_frames

    def build(subs: Array, everything: Array, fwhm: float) -> tuple[Array, Array | None]:
        gap = separable_gap(mjd, keep)
        rate = max(rate_px_per_day, 1.5 * fwhm / gap) if gap > 0 else rate_px_per_day
        sets = exclusion_sets(mjd, rate_px_per_day=rate, fwhm_px=fwhm)
        xp = get_xp(subs)
        out = xp.empty_like(subs)
        cache: dict[tuple[int, ...], Array] = {}
        for i, far in enumerate(sets):
            if len(far) < keep:
                out[i] = everything
                continue
            key = tuple(far)
            if key not in cache:
                cache[key] = stack_median(subs[xp.asarray(far)])[0]
            out[i] = cache[key]
        return out, None

    return build


def separable_gap(mjd: np.ndarray, min_frames: int) -> float:
    """The longest time (days) every frame has ``min_frames`` frames at least that far from it."""
    dt = np.sort(np.abs(mjd[:, None] - mjd[None, :]), axis=1)[:, ::-1]
    if min_frames < 1 or min_frames > mjd.size - 1:
        return 0.0
    return float(dt[:, min_frames - 1].min())


def exclusion_sets(mjd: np.ndarray, *, rate_px_per_day: float, fwhm_px: float) -> list[list[int]]:
    """For each frame, the frames far enough in time for a mover at the rate to be clear."""
    gap = 1.5 * fwhm_px / max(rate_px_per_day, 1e-9)
    dt = np.abs(np.asarray(mjd)[:, None] - np.asarray(mjd)[None, :])
    return [list(np.flatnonzero(row >= gap)) for row in dt]


def same_night_info(kind: str, n_frames: int) -> dict:
    """The ``run`` block's template entry when no other night was given."""
    return {"kind": kind, "files": [], "frames": n_frames}
