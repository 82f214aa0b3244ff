"""From measured positions to reported tracks: astrometry, rates, merging.

Both the fast path (difference-image detections) and the slow-mover path
end in per-frame positions with errors on the common pixel grid; this module
turns them into :class:`Track` objects on the sky and removes duplicates
when both paths found the same object.
"""

from __future__ import annotations

import math

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .types import Track

__all__ = ["CENTROID_FLOOR_PX", "build_track", "merge_tracks", "model_positions"]

#: Centroid error that no SNR removes (PSF model, resampling, WCS), pixels;
#: added in quadrature so bright objects do not claim milliarcsecond errors.
CENTROID_FLOOR_PX = 0.03


def model_positions(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, err: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions on the best motion model, with the model's own errors.

    A single frame's centroid is only as good as that frame's SNR, but the
    object follows a smooth path: fitting the path to every frame and
    reading positions off it averages the noise down by about sqrt(N). The
    path is a line, or a parabola when the curvature is significant (5
    sigma; long arcs of nearby objects bend). If neither model fits
    (reduced chi-square above 4) the measured positions are returned as
    they are.

    Parameters
    ----------
    t : ndarray, shape (M,)
        Times relative to the middle of the sequence (days).
    x, y, err : ndarray, shape (M,)
        Measured positions and their 1-sigma errors (pixels).

    Returns
    -------
    xm, ym, errm : ndarray, shape (M,)
    """
    w = 1.0 / err**2
    best = None
    for degree in (1, 2):
        if t.size < 3 * degree:
            break
        a = np.vander(t / max(np.ptp(t), 1e-9), degree + 1)
        cov = np.linalg.inv(a.T @ (a * w[:, None]))
        cx, cy = cov @ (a.T @ (w * x)), cov @ (a.T @ (w * y))
        chi2 = float(np.sum(w * ((x - a @ cx) ** 2 + (y - a @ cy) ** 2)))
        dof = max(2 * t.size - 2 * (degree + 1), 1)
        if best is None or best[0] - chi2 > 25.0:
            best = (chi2, dof, a, cov, cx, cy)
    assert best is not None  # t.size >= 3: the line was fitted
    chi2, dof, a, cov, cx, cy = best
    if chi2 / dof > 4.0:
        return x, y, err
    var = np.einsum("ij,jk,ik->i", a, cov, a) * max(1.0, chi2 / dof)
    return a @ cx, a @ cy, np.hypot(np.sqrt(var), CENTROID_FLOOR_PX)


def build_track(
    frames: np.ndarray,
    mjd: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    err: np.ndarray,
    *,
    flux: np.ndarray,
    snr: np.ndarray,
    stacked_snr: float,
    wcs: WCS | None,
    zero_point: float | None,
    origin: str,
    pixel_scale: float | None = None,
) -> Track:
    """A :class:`Track` on the sky from positions on the common pixel grid.

    Parameters
    ----------
    frames : ndarray of int, shape (M,)
        Frame indices where the object was measured.
    mjd : ndarray, shape (N,)
        Mid-exposure UTC MJD of every frame of the sequence.
    x, y, err : ndarray, shape (M,)
        Positions and 1-sigma errors, pixels.
    flux, snr : ndarray, shape (M,), keyword-only
        Per-frame flux (reference-frame ADU) and SNR.
    stacked_snr : float, keyword-only
    wcs : WCS or None, keyword-only
        WCS of the common grid; None when the frames have no sky solution
        (RA, Dec and position angle are then NaN).
    zero_point : float or None, keyword-only
        Magnitude of 1 ADU; magnitudes are NaN without it.
    origin : str, keyword-only
        Which search found it (``fast`` or ``slow``).
    pixel_scale : float, keyword-only
        Arcsec per pixel, for the rate and errors when ``wcs`` is None.
    """
    hours = (mjd[frames[-1]] - mjd[frames[0]]) * 24.0
    if wcs is None:
        if pixel_scale is None:
            raise ValueError("build_track needs a WCS or a pixel_scale to measure the rate.")
        ra = dec = np.full(x.size, np.nan)
        scale = np.array([pixel_scale, pixel_scale])
        dx, dy = math.hypot(x[-1] - x[0], y[-1] - y[0]) * pixel_scale, math.nan
    else:
        ra, dec = wcs.pixel_to_world_values(x, y)
        scale = proj_plane_pixel_scales(wcs) * 3600.0  # arcsec per pixel, (x, y)
        # Rate and direction from the first and last positions, on the sky.
        dx = (ra[-1] - ra[0]) * math.cos(math.radians(0.5 * (dec[0] + dec[-1]))) * 3600.0
        dx = (dx + 180.0 * 3600.0) % (360.0 * 3600.0) - 180.0 * 3600.0  # across RA 0
        dy = (dec[-1] - dec[0]) * 3600.0
    mag = np.full(flux.size, np.nan)
    if zero_point is not None:
        mag = np.where(flux > 0, zero_point - 2.5 * np.log10(np.maximum(flux, 1e-30)), np.nan)
    return Track(
        frames=frames,
        mjd=mjd[frames],
        y=y,
        x=x,
        ra=np.asarray(ra) % 360.0,
        dec=np.asarray(dec),
        ra_err_arcsec=err * scale[0],
        dec_err_arcsec=err * scale[1],
        flux=flux,
        snr=snr,
        mag=mag,
        rate_arcsec_per_hour=math.hypot(dx, np.nan_to_num(dy)) / hours if hours > 0 else 0.0,
        position_angle_deg=math.degrees(math.atan2(dx, dy)) % 360.0,
        stacked_snr=stacked_snr,
        origin=origin,
    )


def merge_tracks(tracks: list[Track], *, radius: float) -> list[Track]:
    """Keep the strongest of tracks that follow the same object.

    Two tracks are one object when, in the frames both measured, their
    positions lie within ``radius`` pixels (median). Result is strongest
    first, with ids ``AH00001``, ``AH00002``, ...
    """
    kept: list[Track] = []
    for track in sorted(tracks, key=lambda t: -t.stacked_snr):
        duplicate = False
        for other in kept:
            common, ia, ib = np.intersect1d(track.frames, other.frames, return_indices=True)
            if (
                common.size
                and np.median(np.hypot(track.x[ia] - other.x[ib], track.y[ia] - other.y[ib]))
                < radius
            ):
                duplicate = True
                break
        if not duplicate:
            kept.append(track)
    for k, track in enumerate(kept):
        track.id = f"AH{k + 1:05d}"
    return kept
