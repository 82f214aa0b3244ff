"""Difference imaging: background, PSF, photometric scaling, template, matched filter.

Each aligned frame has its sky subtracted and is scaled to a common flux
level (transparency and airmass change over a night); the static sky is the
per-pixel median of the scaled frames, which a mover, being in a different
place in each frame, does not survive. The difference images are then
filtered with the PSF in the inverse-variance form KBMOD uses (``psi`` and
``phi``), which is optimal for point sources, copes with masked pixels, and is
what the shift-and-stack of the detailed detector sums along a track.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sep

from . import aperture, kernels
from .backend import Array, Ticker, get_ndimage, get_xp, map_frames, to_numpy
from .stats import box_background, mad_std, stack_median
from .types import FWHM_PER_SIGMA, Differences

__all__ = ["Differences", "TemplateBuilder", "difference_frames", "measure_stars"]

#: ``build(subs, median, fwhm) -> (template, variance)``: given the scaled,
#: background-subtracted frames (N, H, W), their median (H, W) and PSF FWHM
#: (pixels), the template to subtract instead of the median - one (H, W)
#: for every frame, or one per frame (N, H, W) - and an extra variance
#: (H, W, ADU^2) of its mismatch with the night, or None.
TemplateBuilder = Callable[[Array, Array, float], tuple[Array, Array | None]]

#: Fraction of a star's peak left as residual by PSF and registration mismatch;
#: added to the variance so bright stars do not become detections.
STAR_RESIDUAL = 0.02


@dataclass
class Stars:
    """Bright isolated stars on the template, for PSF size and photometric scaling."""

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray


def _sep_ready(image: Array) -> np.ndarray:
    return np.ascontiguousarray(np.nan_to_num(to_numpy(image), nan=0.0), dtype=np.float32)


def measure_stars(template: Array, rms: float, *, max_stars: int = 300) -> Stars:
    """Find bright, unflagged, isolated stars on the template with sep.

    Parameters
    ----------
    template : array, shape (H, W)
        Background-subtracted static sky, NaN where no data.
    rms : float
        Sky noise of the template.
    """
    pixels = to_numpy(template)
    data, mask = _sep_ready(pixels), ~np.isfinite(pixels)
    try:
        objs = sep.extract(data, 20.0, err=rms, mask=mask, minarea=5)
    except Exception:  # sep gives up on pathological images (too many objects)
        return Stars(np.zeros(0), np.zeros(0), np.zeros(0))
    good = (objs["flag"] == 0) & (objs["peak"] > 0)
    objs = objs[good]
    if objs.size > 1:  # isolated: nearest detected neighbour beyond 20 px
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(np.c_[objs["x"], objs["y"]]).query(np.c_[objs["x"], objs["y"]], k=2)
        objs = objs[dist[:, 1] > 20]
    objs = objs[np.argsort(-objs["flux"])][:max_stars]
    return Stars(x=objs["x"], y=objs["y"], flux=objs["flux"])


def _psf_sigma(image: Array, stars: Stars, fallback: float) -> float:
    """Gaussian sigma from the stars' half-light radii (r50 = 1.1774 sigma)."""
    if stars.x.size < 3:
        return fallback
    r50, flag = sep.flux_radius(
        _sep_ready(image), stars.x, stars.y, np.full(stars.x.size, 8.0), 0.5, subpix=5
    )
    r50 = r50[(flag == 0) & np.isfinite(r50) & (r50 > 0.3)]
    if r50.size < 3:
        return fallback
    return float(np.clip(np.median(r50) / math.sqrt(2 * math.log(2)), 0.5, 15.0))


def _aperture_flux(image: Array, stars: Stars, radius: float) -> np.ndarray:
    """Aperture sums at the stars' positions; NaN where an aperture touches no-data."""
    pixels = to_numpy(image)  # one device-to-host copy, reused for the mask
    # sep.sum_circle, compiled: no copy of the image (masked pixels are never read) nor the GIL.
    flux, _, flag = aperture.sum_circle(
        pixels, stars.x, stars.y, radius, err=0.0, mask=~np.isfinite(pixels)
    )
    return np.where(flag == 0, flux, np.nan)


def _flux_scale(flux: np.ndarray, ref_flux: np.ndarray) -> float:
    """Median ratio of star fluxes to the template's (1 when too few stars)."""
    ok = np.isfinite(flux) & np.isfinite(ref_flux) & (ref_flux > 0)
    return float(np.median(flux[ok] / ref_flux[ok])) if ok.sum() >= 5 else 1.0


def _gaussian(image: Array, sigma: float, xp, *, mode: str, truncate: float = 4.0) -> Array:
    """``gaussian_filter`` in float32: compiled on NumPy (`detectors.kernels`), ndimage on CuPy."""
    if xp is np:
        return kernels.gaussian_filter(image, sigma, mode=mode, truncate=truncate)
    return get_ndimage(xp).gaussian_filter(image, sigma, mode=mode, truncate=truncate)


def _inverse_variance(
    d: Array, rms: Array, star_var: Array, poisson: Array | None, scale: float, xp
) -> tuple[Array, Array]:
    """``d / var`` and ``1 / var``, 0 where ``d`` has no data: one compiled pass on NumPy."""
    if xp is np:
        return kernels.inverse_variance(d, rms, star_var, poisson, scale=scale)
    var = rms**2 + star_var
    if poisson is not None:
        var += poisson / np.float32(scale)
    ok = xp.isfinite(d) & (var > 0)
    inv = xp.where(ok, 1.0 / xp.where(ok, var, 1.0), 0.0).astype(xp.float32)
    return xp.where(ok, d, 0.0) * inv, inv


def _blur(image: Array, sigma: float, xp) -> Array:
    """Gaussian blur that keeps NaN (no data) from spreading into good pixels."""
    if sigma < 0.2:
        return image
    nan = ~xp.isfinite(image)
    out = _gaussian(xp.where(nan, 0.0, image), sigma, xp, mode="nearest")
    spread = _gaussian(nan.astype(xp.float32), sigma, xp, mode="nearest")
    return xp.where(spread > 0.05, xp.nan, out / xp.maximum(1.0 - spread, 0.5))


def difference_frames(
    images: Array,
    bad: Array,
    *,
    ref: int,
    gain: float | None,
    psf_sigma_guess: float = 1.5,
    template: TemplateBuilder | None = None,
    progress=None,
) -> Differences:
    """Subtract the static sky from aligned frames and matched-filter the result.

    Parameters
    ----------
    images : xp array, shape (N, H, W), float32
        Aligned frames in ADU, NaN where no data.
    bad : xp bool array, shape (N, H, W)
        Masked pixels.
    ref : int, keyword-only
        Reference frame; fluxes are expressed in its ADU.
    gain : float or None, keyword-only
        e-/ADU of the reference frame, for the Poisson noise of stars.
    psf_sigma_guess : float, keyword-only
        PSF sigma used when too few stars are found to measure it.
    template : TemplateBuilder, keyword-only
        Makes the static sky to subtract instead of the frames' median: a
        template from another night, or one per frame (`detectors.template`).
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    Differences
    """
    xp = get_xp(images)
    ndi = get_ndimage(xp)
    n = images.shape[0]
    tick = Ticker(progress, total=2 * n + 1)

    subs = xp.empty_like(images)

    def subtract_sky(i: int) -> None:
        background, _ = box_background(images[i])
        subs[i] = xp.where(bad[i], xp.nan, images[i] - background)
        tick()

    map_frames(subtract_sky, n, xp)
    first, _ = stack_median(subs)
    stars = measure_stars(first, mad_std(first))
    sigma = np.array(map_frames(lambda i: _psf_sigma(subs[i], stars, psf_sigma_guess), n, xp))
    scale = np.ones(n)
    if stars.x.size >= 5:
        radius = 2.0 * FWHM_PER_SIGMA * float(np.max(sigma))
        ref_flux = _aperture_flux(first, stars, radius)
        scale = np.array(
            map_frames(
                lambda i: _flux_scale(_aperture_flux(subs[i], stars, radius), ref_flux), n, xp
            )
        )
    scale = np.where(np.isfinite(scale) & (scale > 0.05), scale, 1.0)
    scale = scale / scale[ref]
    subs /= xp.asarray(scale, dtype=xp.float32)[:, None, None]
    static, count = stack_median(subs)
    # A template made of one or two frames still holds the mover (and the
    # frame's own noise): only trust pixels covered by enough frames.
    static = xp.where(count >= min(3, n), static, xp.nan)
    per_frame, extra_variance = None, None
    if template is not None:
        chosen, extra_variance = template(subs, static, FWHM_PER_SIGMA * float(np.median(sigma)))
        if chosen.ndim == 3:
            per_frame = chosen
        else:
            static = chosen
    sigma_t = _psf_sigma(static, stars, float(np.median(sigma)))
    tick()

    star_flux = xp.maximum(xp.nan_to_num(static), 0.0)
    # Residuals of a star reach out to its wings: scale them by the star's peak.
    star_peak = ndi.maximum_filter(star_flux, size=2 * round(2 * sigma_t) + 1)
    # The variance every frame shares: star residuals, and the stars' own
    # Poisson noise in the reference frame's ADU (divided by each frame's scale).
    star_var = (STAR_RESIDUAL * star_peak) ** 2
    if extra_variance is not None:  # where the template may not match the night
        star_var = star_var + extra_variance
    poisson = star_flux / gain if gain else None
    del star_peak, star_flux
    psi, phi = xp.empty_like(subs), xp.empty_like(subs)
    noise = np.ones(n)

    def filter_frame(i: int) -> None:
        # Match PSFs by blurring whichever of frame and template is sharper.
        blur = math.sqrt(abs(sigma[i] ** 2 - sigma_t**2))
        own = static if per_frame is None else per_frame[i]
        if sigma[i] > sigma_t:
            d = subs[i] - _blur(own, blur, xp)
        else:
            d = _blur(subs[i], blur, xp) - own
            sigma[i] = sigma_t
        subs[i] = d  # the scaled frame is not needed again: keep the difference
        _, rms = box_background(d)
        weighted, inv = _inverse_variance(d, rms, star_var, poisson, float(scale[i]), xp)
        s = float(sigma[i])
        ps = _gaussian(weighted, s, xp, mode="constant", truncate=3.5)
        ph = _gaussian(inv, s / math.sqrt(2), xp, mode="constant", truncate=3.5)
        ph /= 4 * math.pi * s * s
        # Resampling and PSF matching correlate the noise; measure the true
        # scatter of the SNR map and fold it into psi and phi so that SNR is
        # in real sigma while the flux (psi / phi) is unchanged.
        sub_ph = ph[::3, ::3]
        deep = sub_ph > 0.5 * xp.median(sub_ph[sub_ph > 0])
        c = mad_std(xp.where(deep, ps[::3, ::3] / xp.sqrt(xp.maximum(sub_ph, 1e-30)), xp.nan))
        c = c if np.isfinite(c) and c > 0 else 1.0
        xp.multiply(ps, np.float32(1 / c**2), out=psi[i])
        xp.multiply(ph, np.float32(1 / c**2), out=phi[i])
        noise[i] = c
        tick()

    map_frames(filter_frame, n, xp)
    return Differences(
        diff=subs,
        psi=psi,
        phi=phi,
        template=static,
        scale=scale,
        psf_sigma=sigma,
        noise=noise,
    )
