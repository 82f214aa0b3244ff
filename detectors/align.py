"""Align: resample every frame onto one reference pixel grid.

Frames of one field are dithered by a few pixels and may be slightly rotated,
so before a static-sky template can be subtracted every frame is put on the
pixel grid of a reference frame. Where each reference pixel falls in a frame
is the frame's `Registration` (the WCS pair, corrected on the stars, see
`detectors.register`): exact on a coarse grid and interpolated in between
(it is smooth), which is ~100x cheaper than evaluating a distorted WCS at
every pixel. The image is resampled with a cubic B-spline: on the CPU by a
compiled kernel that reads the coarse map itself (`detectors.spline`), on
CuPy through ``map_coordinates`` on the dense map.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
from astropy.wcs import WCS

from . import spline
from .backend import Array, get_ndimage, map_frames
from .errors import InputError
from .types import Frame, Registration

__all__ = [
    "Aligned",
    "align_frames",
    "coarse_grid",
    "coarse_pixel_map",
    "pixel_map",
    "reference_index",
]


@dataclass
class Aligned:
    """Frames on one pixel grid.

    Attributes
    ----------
    images : xp array, shape (N, H, W), float32
        Resampled images in ADU, NaN where no data or masked.
    bad : xp array of bool, shape (N, H, W)
        True where a pixel has no data or is masked (saturated, hot, bad column).
    wcs : WCS or None
        The reference frame's own WCS (None when it has none).
    ref : int
        Index of the reference frame.
    """

    images: Array
    bad: Array
    wcs: WCS | None
    ref: int


def reference_index(frames: list[Frame]) -> int:
    """The frame nearest the middle of the sequence: the smallest dithers to it."""
    mjd = np.array([f.mjd for f in frames])
    return int(np.argmin(np.abs(mjd - np.median(mjd))))


def pixel_map(
    src: WCS, ref: WCS, shape: tuple[int, int], *, step: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Source-frame pixel coordinates of every reference-grid pixel.

    Parameters
    ----------
    src, ref : WCS
        Celestial WCS of the frame to resample and of the reference grid.
    shape : (H, W)
        Reference grid shape.
    step : int, keyword-only
        Spacing in pixels of the exactly evaluated coarse grid.

    Returns
    -------
    ys, xs : ndarray, shape (H, W), float32
        Where each reference pixel ``[y, x]`` falls in the source frame.
    """
    gy, gx = coarse_grid(shape, step=step)
    sy, sx = coarse_pixel_map(src, ref, gy, gx)
    return Registration.one_frame((gy, gx), (sy, sx)).dense(0, shape)


def coarse_grid(shape: tuple[int, int], *, step: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns, every ``step`` pixels and the last, where a mapping is kept exactly."""
    h, w = shape
    gy = np.unique(np.r_[np.arange(0, h, step), h - 1]).astype(float)
    gx = np.unique(np.r_[np.arange(0, w, step), w - 1]).astype(float)
    return gy, gx


def coarse_pixel_map(
    src: WCS, ref: WCS, gy: np.ndarray, gx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Source-frame pixel ``(y, x)`` of reference pixels on the grid ``gy x gx``, via the sky."""
    cy, cx = np.meshgrid(gy, gx, indexing="ij")
    world = ref.pixel_to_world_values(cx, cy)
    sx, sy = src.world_to_pixel_values(*world)
    if not (np.all(np.isfinite(sx)) and np.all(np.isfinite(sy))):
        raise InputError("the WCS of a frame cannot be inverted over the reference field")
    return np.asarray(sy, dtype=float), np.asarray(sx, dtype=float)


def _is_identity(registration: Registration, k: int, tol: float = 1e-3) -> bool:
    """Frame ``k``'s map is the identity (the reference frame, or one not dithered)."""
    gy, gx = registration.grid_y, registration.grid_x
    return bool(
        np.max(np.abs(registration.map_y[k] - gy[:, None])) < tol
        and np.max(np.abs(registration.map_x[k] - gx[None, :])) < tol
    )


def resample(
    image: Array,
    bad: Array,
    registration: Registration,
    k: int,
    shape: tuple[int, int],
    xp: ModuleType,
) -> tuple[Array, Array]:
    """Resample frame ``k``'s image and bad-pixel mask onto the reference grid.

    Bad pixels are filled with the image median before interpolating so
    that a hot pixel or a NaN does not ring into (or wipe out) its
    neighbours; the mask is carried along bilinearly, so every output pixel
    that a bad input pixel touches is bad too. On NumPy a compiled kernel
    evaluates the spline reading the registration's coarse map
    (`detectors.spline.spline_resample`); on CuPy, ndimage's
    ``map_coordinates`` on the dense map, which runs as fast there.
    """
    sample = image[::4, ::4][~bad[::4, ::4]]
    fill = float(xp.median(sample)) if sample.size else 0.0
    if xp is np:
        grid = (registration.grid_y, registration.grid_x)
        maps = (registration.map_y[k], registration.map_x[k])
        return spline.spline_resample(image, bad, grid, maps, shape, fill=fill)
    ys, xs = registration.dense(k, shape)
    ndi = get_ndimage(xp)
    filled = xp.where(bad, fill, image)
    coords = xp.stack([xp.asarray(ys), xp.asarray(xs)])
    out = ndi.map_coordinates(filled, coords, order=3, mode="constant", cval=np.nan)
    moved_bad = ndi.map_coordinates(bad.astype(xp.float32), coords, order=1, cval=1.0)
    out_bad = (moved_bad > 0.01) | ~xp.isfinite(out)
    return xp.where(out_bad, xp.nan, out).astype(xp.float32), out_bad


def align_frames(
    frames: list[Frame],
    bad: list[Array],
    xp: ModuleType,
    *,
    registration: Registration,
    progress=None,
) -> Aligned:
    """Put every frame on the pixel grid of the reference frame.

    Parameters
    ----------
    frames : list of Frame
        Time-ordered frames of one field.
    bad : list of xp bool arrays
        Per-frame masks in each frame's own pixels (True = do not use).
    xp : module
        Array module (NumPy or CuPy).
    registration : Registration, keyword-only
        Where each reference pixel falls in each frame (`detectors.register`).
    progress : callable, optional
        Called as ``progress(done, total)`` after each frame.

    Returns
    -------
    Aligned
    """
    ref = registration.ref
    shape = frames[ref].shape
    n = len(frames)
    images = xp.empty((n, *shape), dtype=xp.float32)
    masks = xp.empty((n, *shape), dtype=bool)
    done = []

    def align_one(i: int) -> None:
        image = xp.asarray(frames[i].data, dtype=xp.float32)
        if frames[i].shape == shape and _is_identity(registration, i):
            images[i], masks[i] = xp.where(bad[i], xp.nan, image), bad[i]
        else:
            images[i], masks[i] = resample(image, bad[i], registration, i, shape, xp)
        done.append(i)
        if progress:
            progress(len(done), n)

    map_frames(align_one, n, xp)
    return Aligned(images=images, bad=masks, wcs=frames[ref].wcs, ref=ref)
