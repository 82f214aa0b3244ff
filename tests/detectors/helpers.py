"""Small seeded synthetic images for stage unit tests (the full simulator is
``detectors.simulate``; these keep each unit test to one idea)."""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

from detectors.types import Frame

SCALE = 1.2 / 3600.0  # deg per pixel


def tan_wcs(shape, *, dx=0.0, dy=0.0, rot_deg=0.0, ra=83.8, dec=-5.4) -> WCS:
    """TAN WCS with the field centre at ``(ra, dec)``, dithered by (dx, dy) px."""
    h, w = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [w / 2 + 1 + dx, h / 2 + 1 + dy]
    t = np.radians(rot_deg)
    wcs.wcs.cd = SCALE * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    return wcs


def add_gaussians(image, x, y, flux, sigma):
    """Add Gaussian point sources (in place) within 5 sigma stamps."""
    h, w = image.shape
    r = int(np.ceil(5 * sigma))
    for xi, yi, fi in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(flux), strict=True):
        x0, y0 = round(float(xi)), round(float(yi))
        ys, xs = (
            slice(max(y0 - r, 0), min(y0 + r + 1, h)),
            slice(max(x0 - r, 0), min(x0 + r + 1, w)),
        )
        yy, xx = np.mgrid[ys, xs]
        image[ys, xs] += (
            fi
            * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * sigma**2))
            / (2 * np.pi * sigma**2)
        )
    return image


def make_sequence(
    *,
    seed=0,
    shape=(256, 256),
    n=6,
    movers=((60.0, 80.0, 30.0, 0.0, 4000.0),),
    n_stars=60,
    sigma=1.5,
    sky=500.0,
    gain=2.0,
    read_noise=5.0,
    dither=3.0,
    cadence_min=15.0,
):
    """Dithered frames of one star field with movers ``(x, y, vx, vy, flux)``.

    Mover positions and velocities (px/hour) are on the undithered grid;
    stars are fixed on the sky. Returns ``(frames, truth)`` where ``truth[j]``
    is an (n, 2) array of mover j's (x, y) on the undithered grid.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    base = tan_wcs(shape)
    sx, sy = rng.uniform(10, w - 10, n_stars), rng.uniform(10, h - 10, n_stars)
    sflux = 10 ** rng.uniform(3.5, 5.5, n_stars)
    star_world = base.pixel_to_world_values(sx, sy)
    frames, truth = [], [np.zeros((n, 2)) for _ in movers]
    for k in range(n):
        hours = k * cadence_min / 60.0
        wcs = tan_wcs(shape, dx=rng.uniform(-dither, dither), dy=rng.uniform(-dither, dither))
        img = np.full(shape, sky, dtype=float)
        px, py = wcs.world_to_pixel_values(*star_world)
        add_gaussians(img, px, py, sflux, sigma)
        for j, (x0, y0, vx, vy, flux) in enumerate(movers):
            bx, by = x0 + vx * hours, y0 + vy * hours
            truth[j][k] = bx, by
            mx, my = wcs.world_to_pixel_values(*base.pixel_to_world_values(bx, by))
            add_gaussians(img, mx, my, flux, sigma)
        electrons = rng.poisson(img * gain) + rng.normal(0, read_noise, shape)
        frames.append(
            Frame(
                data=(electrons / gain).astype(np.float32),
                wcs=wcs,
                mjd=60000.25 + hours / 24.0,
                exptime=60.0,
                name=f"synth_{k:02d}.fits",
                gain=gain,
                read_noise=read_noise,
                saturation=60000.0,
                zero_point=25.0,
            )
        )
    return frames, truth
