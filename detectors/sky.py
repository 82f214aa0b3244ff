"""Sky: where the reference grid is on the sky, and how well that is known.

Registration (`detectors.register`) puts every frame on the reference grid,
so one celestial WCS of that grid places every track. It comes from what
the frames offer, best first:

- ``wcs``: the frames' own WCS. Each frame's WCS, carried through its star
  registration, says where the reference pixels are; their clipped mean is
  the reference grid's WCS. A WCS off by pixels in some frames (a spacecraft's
  attitude, a mount's model) is averaged with the others (a clipped mean),
  and a reference frame without a WCS borrows its neighbours'.
- ``solved``: no frame has a WCS; the reference frame's stars are
  plate-solved (`detectors.platesolve`: astrometry.net's ``solve-field``
  when installed with index files covering the field's scale).
- ``approximate``: no frame has a WCS and none could be solved; the header's pointing
  (``OBJCTRA``/``OBJCTDEC``, ``RA``/``DEC``) and a nominal pixel scale (the
  header's, or ``pixel_scale``), north up and east left. Good to arcminutes:
  rates are right, positions are not fit for an MPC report.
- ``none``: a pixel scale but no pointing: tracks in pixels, rates in arcsec/h.

Without any pixel scale the rate range cannot be turned into pixels, and
the search stops with a message saying how to give one.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import fit_wcs_from_points, proj_plane_pixel_scales

from .errors import InputError
from .headers import pixel_scale_hint, pointing_hint
from .platesolve import available_solvers, plate_solve
from .register import fit_affine
from .types import Frame, Registration, SkySolution

__all__ = ["approximate_wcs", "compose_affine", "sky_solution"]

#: Coarse-grid nodes (every n-th) where the frames' WCS are compared.
_SUBSAMPLE = 3
#: Frames' WCS within this of the median (pixels) are never clipped from the
#: mean: pixels of jitter average out, a WCS tens of pixels off (a failed solution) is dropped.
_CLIP_FLOOR_PX = 15.0


def approximate_wcs(ra: float, dec: float, scale_arcsec: float, shape: tuple[int, int]) -> WCS:
    """A TAN WCS centred on ``(ra, dec)``, north up, east left, ``scale_arcsec`` per pixel.

    Parameters
    ----------
    ra, dec : float
        Degrees, ICRS, of the image centre.
    scale_arcsec : float
        Arcsec per pixel.
    shape : (int, int)
        Image shape (H, W).

    Returns
    -------
    WCS
    """
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    wcs.wcs.cd = np.diag([-scale_arcsec / 3600.0, scale_arcsec / 3600.0])
    wcs.wcs.radesys = "ICRS"
    return wcs


def compose_affine(wcs: WCS, matrix: np.ndarray, shape: tuple[int, int]) -> WCS:
    """The WCS of ``p -> wcs(A p + b)``: a frame's WCS seen from another pixel grid.

    Exact for WCS whose distortion acts after the linear part (TAN, TPV): the
    affine is folded into CD and CRPIX. A SIP polynomial acts on pixel offsets
    before it, so those are refitted (TAN-SIP, degree 3) on a grid of ``shape``.

    Parameters
    ----------
    wcs : WCS
        Celestial WCS of the grid ``A p + b`` lands on.
    matrix : ndarray, shape (2, 3)
        ``[A | b]`` acting on 0-based ``(x, y)``.
    shape : (int, int)
        The new grid's shape (H, W), for the SIP refit.

    Returns
    -------
    WCS
    """
    a, b = matrix[:, :2], matrix[:, 2]
    if wcs.sip is not None:
        ys, xs = np.mgrid[0 : shape[0] : complex(0, 12), 0 : shape[1] : complex(0, 12)]
        pixels = np.c_[xs.ravel(), ys.ravel()]
        moved = pixels @ a.T + b
        world = wcs.pixel_to_world(moved[:, 0], moved[:, 1])
        return fit_wcs_from_points((pixels[:, 0], pixels[:, 1]), world, sip_degree=3)
    linear = wcs.pixel_scale_matrix @ a
    # intermediate = M (A p + b + 1 - crpix) = (M A) (p + 1 - crpix')
    crpix = 1.0 - np.linalg.solve(a, b + 1.0 - wcs.wcs.crpix)
    header = wcs.to_header(relax=True)
    for key in list(header.keys()):
        if (key[:2] in ("PC", "CD") and "_" in key) or key.startswith("CDELT"):
            del header[key]
    for i in range(2):
        header[f"CRPIX{i + 1}"] = float(crpix[i])
        for j in range(2):
            header[f"CD{i + 1}_{j + 1}"] = float(linear[i, j])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        return WCS(header)


def _consensus(frames: list[Frame], reg: Registration) -> tuple[WCS, float]:
    """The reference grid's WCS from every frame's, and their scatter (pixels, RMS)."""
    ref = reg.ref
    shape = frames[ref].shape
    have = [k for k, f in enumerate(frames) if f.wcs is not None]
    base_k = min(have, key=lambda k: (abs(k - ref), k))
    gy, gx = reg.grid_y[::_SUBSAMPLE], reg.grid_x[::_SUBSAMPLE]
    py, px = (v.ravel() for v in np.meshgrid(gy, gx, indexing="ij"))
    grid = np.c_[px, py]

    def seen_by(k: int) -> np.ndarray:
        fx = reg.map_x[k][::_SUBSAMPLE, ::_SUBSAMPLE].ravel()
        fy = reg.map_y[k][::_SUBSAMPLE, ::_SUBSAMPLE].ravel()
        return np.c_[fx, fy]

    if base_k == ref:
        base = frames[ref].wcs
    else:  # the nearest frame with a WCS, seen through its registration
        matrix, _, _ = fit_affine(grid, seen_by(base_k), clip=10.0)
        base = compose_affine(frames[base_k].wcs, matrix, shape)
    where = np.full((len(have), grid.shape[0], 2), np.nan)
    for row, k in enumerate(have):
        h, w = frames[k].shape
        xy = seen_by(k)
        inside = (xy[:, 0] > -0.5) & (xy[:, 0] < w - 0.5) & (xy[:, 1] > -0.5) & (xy[:, 1] < h - 0.5)
        frame_wcs = frames[k].wcs
        assert frame_wcs is not None  # `have` holds the frames with a WCS
        world = frame_wcs.pixel_to_world_values(xy[inside, 0], xy[inside, 1])
        assert base is not None
        where[row, inside] = np.c_[base.world_to_pixel_values(*world)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # grid points no frame covers
        # A clipped mean: as good as the mean for errors of a few pixels in every
        # frame (the median of a few of them is not), deaf to one WCS far off.
        centre = np.nanmedian(where, axis=0)
        spread = 1.4826 * np.nanmedian(np.abs(where - centre), axis=0)
        keep = np.abs(where - centre) <= np.maximum(3.0 * spread, _CLIP_FLOOR_PX)
        target = np.nanmean(np.where(keep, where, np.nan), axis=0)
        scatter = float(np.sqrt(np.nanmean(np.sum((where - target) ** 2, axis=2))))
    ok = np.all(np.isfinite(target), axis=1)
    matrix, _, _ = fit_affine(grid[ok], target[ok], clip=10.0)
    return compose_affine(base, matrix, shape), scatter if len(have) > 1 else 0.0


def sky_solution(
    frames: list[Frame],
    registration: Registration,
    *,
    pixel_scale: float | None = None,
    stars: np.ndarray | None = None,
) -> SkySolution:
    """The reference grid's place on the sky, from the best the frames offer.

    Parameters
    ----------
    frames : list of Frame
        The registered frames (``Frame.wcs`` may be None).
    registration : Registration
        From `detectors.register.register_frames`.
    pixel_scale : float, keyword-only
        Arcsec per pixel for frames without a WCS (``--pixel-scale``); the
        header's nominal scale otherwise.
    stars : ndarray, shape (M, 2), keyword-only
        The reference frame's stars ``(x, y)``, brightest first, for a plate
        solver when no frame has a WCS.

    Returns
    -------
    SkySolution

    Raises
    ------
    InputError
        No frame has a WCS, and neither ``pixel_scale`` nor the headers give a scale.
    """
    ref = frames[registration.ref]
    if any(f.wcs is not None for f in frames):
        wcs, scatter = _consensus(frames, registration)
        n = sum(f.wcs is not None for f in frames)
        mean_scale = float(np.mean(proj_plane_pixel_scales(wcs))) * 3600.0
        note = (
            f"the clipped mean of {n} frames' own WCS through the star registration "
            f"(they disagree by {scatter:.2f} px RMS)"
            if n > 1
            else f"the WCS of {next(f.name for f in frames if f.wcs is not None)} through "
            "the star registration"
        )
        return SkySolution(wcs=wcs, astrometry="wcs", pixel_scale=mean_scale, note=note)
    headers = [ref.header]
    scale = pixel_scale or pixel_scale_hint(headers)
    pointing = pointing_hint(headers)
    solvers = available_solvers()
    solved = (
        None if stars is None else plate_solve(stars, ref.shape, scale=scale, pointing=pointing)
    )
    if solved is not None and stars is not None:
        solved_scale = float(np.mean(proj_plane_pixel_scales(solved.wcs))) * 3600.0
        note = (
            f"no frame has a WCS: {ref.name} plate-solved by {solved.solver} from "
            f"{len(stars)} stars ({solved_scale:.3f} arcsec/px); every frame placed by "
            "registration"
        )
        return SkySolution(wcs=solved.wcs, astrometry="solved", pixel_scale=solved_scale, note=note)
    tried = (
        f"{' and '.join(solvers)} found no plate solution"
        if solvers
        else "no plate solver installed (astrometry.net's solve-field)"
    )
    if scale is None:
        raise InputError(
            f"{ref.name}: the frames have no WCS and no pixel scale (SECPIX, PIXSCALE, or "
            f"XPIXSZ with FOCALLEN), and {tried}; give --pixel-scale ARCSEC_PER_PIXEL, or "
            "plate-solve the frames (e.g. astrometry.net's solve-field) and keep the solution "
            "in their headers."
        )
    source = "--pixel-scale" if pixel_scale else "the header's nominal pixel scale"
    if pointing is None:
        note = (
            f"no WCS, {tried}, and no pointing in the headers: positions in pixels only, "
            f"rates from {source} ({scale:.3f} arcsec/px)"
        )
        return SkySolution(wcs=None, astrometry="none", pixel_scale=scale, note=note)
    note = (
        f"APPROXIMATE: no frame has a WCS and {tried}; centre from the header's pointing "
        f"(RA {pointing[0]:.4f}, Dec {pointing[1]:.4f}), {source} ({scale:.3f} arcsec/px), "
        "north up assumed; positions may be off by arcminutes - plate-solve before reporting"
    )
    wcs = approximate_wcs(*pointing, scale, ref.shape)
    return SkySolution(wcs=wcs, astrometry="approximate", pixel_scale=scale, note=note)
