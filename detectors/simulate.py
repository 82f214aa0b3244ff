"""Simulated fields with known moving objects, for tests and the benchmark.

A field is one patch of sky seen over one night, with what BENCHMARK.md says
real frames have: a TAN WCS per frame, dithers and a small rotation between
frames, seeing that varies, a sky gradient, stars (some saturated), Poisson
and read noise, hot pixels and bad columns fixed on the detector, cosmic rays,
now and then a satellite streak, and asteroids that move along great circles
at a given rate and position angle, trailed within the exposure.

Conventions: pixels are 0-based and indexed ``[y, x]``; images are ADU
(``gain`` e-/ADU); times are UTC MJD; rates are arcsec/hour; position angles
are degrees east of north. Nothing here touches files: the caller writes
``frames`` with ``io.write_fits`` and ``truth`` with ``io.write_json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from scipy.special import erf

__all__ = [
    "RealTraits",
    "SimulatedField",
    "TemplateNight",
    "flux_for_snr",
    "optimal_snr",
    "simulate_field",
]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_EDGE_PX = 20.0  # objects stay this far inside every frame, for the whole night
_GAUSS_POISSON_E = 100.0  # above this mean, Poisson noise is drawn as its Gaussian limit


@dataclass(frozen=True, kw_only=True)
class RealTraits:
    """What real sequences have that a benchmark field does not, each off by default.

    Small telescopes in space and unguided amateur mounts give frames whose
    pointing drifts and jumps, whose WCS is rough, and whose detector has many
    warm pixels; these switches put that into a simulated field so the
    benchmark measures what it does to a search.

    Attributes
    ----------
    warm_pixel_fraction : float
        Fraction of detector pixels that are warm: 3-30 times the sky noise
        per exposure (log-uniform), fixed on the detector.
    drift_px_per_hour : float
        The pointing drifts at this rate, in one random direction all night.
    blocks : int
        The frames are taken in this many blocks of consecutive exposures.
    block_gap_min : float
        Minutes between the end of one block and the start of the next.
    jump_px : float
        Between blocks the pointing jumps this far, each time in a random direction.
    wcs_error_px : float
        Each header WCS is off from the truth by about this many pixels, in a
        random direction; the errors average to zero over the sequence (an
        attitude or mount model that jitters about a calibrated pointing: a
        common offset of every frame is no search's business and no
        catalogue-free method could find it).
    exposure_keyword : str
        Header keyword of the exposure time (``EXPTIME``, ``EXPOSURE``, ...).
    height_loss_rows : int
        Each frame loses 0 to this many rows at its top, so heights differ.
    """

    warm_pixel_fraction: float = 0.0
    drift_px_per_hour: float = 0.0
    blocks: int = 1
    block_gap_min: float = 30.0
    jump_px: float = 0.0
    wcs_error_px: float = 0.0
    exposure_keyword: str = "EXPTIME"
    height_loss_rows: int = 0


@dataclass(frozen=True, kw_only=True)
class TemplateNight:
    """Frames of the same field from another night, for a reference template.

    Attributes
    ----------
    frames : int
        Exposures that night (same cadence and exposure time as the sequence).
    days : float
        When that night starts, days after the sequence's start (negative: before).
    offset_px : (float, float)
        Pointing of that night relative to the sequence's, ``(dy, dx)`` pixels.
    rotation_deg : float
        Field rotation of that night relative to the sequence's.
    fwhm_range_px : (float, float) or None
        Seeing that night (None: the sequence's range).
    """

    frames: int = 10
    days: float = -1.0
    offset_px: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    fwhm_range_px: tuple[float, float] | None = None


@dataclass
class SimulatedField:
    """A simulated image sequence and what is in it.

    Attributes
    ----------
    frames : list of (str, ndarray, astropy.io.fits.Header)
        File name (``sim_000.fits``, ...), float32 image of shape (H, W) in
        ADU, and its header (WCS, ``DATE-OBS`` at exposure start, ``EXPTIME``,
        ``GAIN``, ``RDNOISE``, ``SATURATE``, ``MAGZP``, ``FILTER``).
    truth : dict
        JSON-serialisable truth::

            {"seed", "field": {"ra", "dec", "frames", "mjd_start", "mjd_end",
                               "pixel_scale_arcsec", "shape": [H, W]},
             "frames": [{"name", "mjd_mid", "fwhm_px", "sky_e", "read_noise_e", "gain"}],
             "objects": [{"id", "snr", "rate_arcsec_per_hour", "position_angle_deg", "mag",
                          "observations": [{"frame", "mjd", "ra", "dec", "x", "y", "snr"}]}]}

        With a template night, ``truth["template"]`` holds its ``frames``
        (names and times) in the same form.
    template : list of (str, ndarray, astropy.io.fits.Header)
        Frames of the field from another night (``tpl_000.fits``, ...), with
        the movers where they were then; empty when none were asked for.

        All times are UTC MJD at mid-exposure (``field.mjd_start``/``mjd_end``
        are the first and last frames'); ``x``, ``y`` are 0-based pixels in
        that frame's own grid; object ``snr`` is the mean of its per-frame
        SNRs, which differ with each frame's sky and seeing; ``sky_e`` is the
        sky at the frame centre (e-/pixel).
    """

    frames: list[tuple[str, np.ndarray, fits.Header]]
    truth: dict[str, Any]
    template: list[tuple[str, np.ndarray, fits.Header]] = field(default_factory=list)


def optimal_snr(flux_e: Any, *, sky_e: Any, read_noise_e: float, sigma_px: Any) -> np.ndarray:
    """Per-frame PSF-weighted SNR of a point source, as BENCHMARK.md defines it.

    ``SNR = F / sqrt(F + n_eff (B + RN^2))`` with ``n_eff = 4 pi sigma^2``.

    Parameters
    ----------
    flux_e : array_like
        Total source flux in electrons.
    sky_e : array_like
        Sky level in electrons per pixel.
    read_noise_e : float
        Read noise in electrons.
    sigma_px : array_like
        Gaussian PSF sigma in pixels.

    Returns
    -------
    ndarray of float
        The SNR, broadcast over the inputs.
    """
    flux = np.asarray(flux_e, dtype=float)
    n_eff = 4.0 * np.pi * np.asarray(sigma_px, dtype=float) ** 2
    return flux / np.sqrt(flux + n_eff * (np.asarray(sky_e, dtype=float) + read_noise_e**2))


def flux_for_snr(snr: Any, *, sky_e: Any, read_noise_e: float, sigma_px: Any) -> np.ndarray:
    """Flux in electrons that gives a per-frame SNR: the inverse of `optimal_snr`.

    Solves ``F^2 - S^2 F - S^2 n_eff (B + RN^2) = 0`` for its positive root.

    Parameters
    ----------
    snr : array_like
        Target SNR.
    sky_e, read_noise_e, sigma_px
        As in `optimal_snr`.

    Returns
    -------
    ndarray of float
        Flux in electrons, broadcast over the inputs.
    """
    s2 = np.asarray(snr, dtype=float) ** 2
    noise2 = (
        4.0
        * np.pi
        * np.asarray(sigma_px, dtype=float) ** 2
        * (np.asarray(sky_e, dtype=float) + read_noise_e**2)
    )
    return 0.5 * (s2 + np.sqrt(s2 * s2 + 4.0 * s2 * noise2))


def simulate_field(
    *,
    seed: int,
    shape: tuple[int, int] = (1024, 1024),
    n_frames: int = 10,
    n_objects: int = 20,
    snr_range: tuple[float, float] = (2.0, 12.0),
    rate_range: tuple[float, float] = (1.0, 150.0),
    ra: float | None = None,
    dec: float | None = None,
    mjd_start: float = 60410.1,
    cadence_min: float = 15.0,
    exptime_s: float = 120.0,
    pixel_scale_arcsec: float = 1.2,
    fwhm_range_px: tuple[float, float] = (2.5, 3.5),
    sky_e: float = 1500.0,
    gain: float = 1.5,
    read_noise_e: float = 5.0,
    saturate_adu: float = 50000.0,
    zero_point: float = 26.0,
    filter_name: str = "r",
    dither_px: float = 5.0,
    rotation_deg: float = 0.1,
    star_density_arcmin2: float = 4.0,
    hot_pixel_fraction: float = 5e-5,
    n_bad_columns: int = 2,
    cosmic_rays_per_mpix_min: float = 10.0,
    satellite_prob: float = 0.1,
    noise: bool = True,
    place_movers: Callable[..., dict[str, Any]] | None = None,
    traits: RealTraits | None = None,
    template: TemplateNight | None = None,
    pointing: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> SimulatedField:
    """Simulate one night's image sequence of one field, with its truth.

    Gives detectors and the benchmark frames that look like a telescope's, and
    the true positions to score against. Deterministic for a given ``seed``;
    each ingredient draws from its own random stream, so turning one off (say
    ``n_objects=0`` or ``noise=False``) leaves the others unchanged.

    Parameters
    ----------
    seed : int
        Seed of every random draw.
    shape : (int, int)
        Image shape (H, W) in pixels.
    n_frames : int
        Number of exposures.
    n_objects : int
        Number of moving objects.
    snr_range : (float, float)
        Mean per-frame SNR of the objects is drawn uniformly in this range.
    rate_range : (float, float)
        Sky rates in arcsec/hour, drawn log-uniformly; directions are uniform.
    ra, dec : float or None
        Field centre in degrees (ICRS); random when None.
    mjd_start : float
        UTC MJD of the start of the first exposure.
    cadence_min : float
        Minutes between exposure starts.
    exptime_s : float
        Exposure time in seconds.
    pixel_scale_arcsec : float
        Pixel scale in arcsec/pixel.
    fwhm_range_px : (float, float)
        Each frame's seeing FWHM (pixels) is drawn uniformly in this range.
    sky_e : float
        Mean sky level in electrons/pixel; each frame varies by up to 15 % and
        has a gradient of up to 5 % across the chip.
    gain : float
        e-/ADU.
    read_noise_e : float
        Read noise in electrons.
    saturate_adu : float
        Pixels are clipped at this level (ADU).
    zero_point : float
        Magnitude of 1 ADU of total flux (header ``MAGZP``).
    filter_name : str
        Header ``FILTER``.
    dither_px : float
        Pointing offsets are uniform within +/- this many pixels.
    rotation_deg : float
        Field rotation is uniform within +/- this many degrees.
    star_density_arcmin2 : float
        Stars per square arcminute, from 2 mag brighter than saturation to
        below the noise, with counts rising 0.3 dex per magnitude; plus about
        one saturated star per 500 stars, at least one per field.
    hot_pixel_fraction : float
        Fraction of detector pixels that are hot (500-50000 e- per exposure).
    n_bad_columns : int
        Detector columns that are hot or dead, fully or from a row upward.
    cosmic_rays_per_mpix_min : float
        Cosmic-ray hits per megapixel per minute of exposure.
    satellite_prob : float
        Chance that a frame has a satellite streak across it.
    noise : bool
        False gives the noiseless expectation (for tests).
    place_movers : callable, optional
        Places the moving objects instead of straight great-circle paths at
        ``rate_range``: called as the default placer is, plus ``mjd_mid``
        (UTC MJD of each frame), it returns per-object ``rate``, ``pa``,
        per-frame ``ra``, ``dec``, ``x``, ``y``, ``hours``, ``mjd_mid``, a
        ``positions(owner, mjd)`` callable for positions within exposures,
        and ``labels`` (dicts merged into each truth object).
        `detectors.simulate_orbits` gives movers real orbits this way.
    traits : RealTraits, optional
        Warm pixels, pointing drift and jumps between blocks, WCS errors,
        another exposure keyword, frames of differing heights (none by default).
    template : TemplateNight, optional
        Also simulate frames of the field from another night (same stars,
        detector and movers, each where it was then) into ``template``.
    pointing : (float, float, float)
        ``(dy, dx, rotation_deg)`` of the whole night's pointing from the
        field centre (a template night's; the stars off the usual field are
        not drawn, so keep it within a few dithers).

    Returns
    -------
    SimulatedField
        Frames named ``sim_000.fits``... and the truth dict.

    Raises
    ------
    ValueError
        For an impossible setting; the message names it.
    """
    settings = {k: v for k, v in locals().items() if k not in ("template", "pointing")}
    _check(shape, n_frames, n_objects, snr_range, rate_range, cadence_min, exptime_s, fwhm_range_px)
    traits = traits or RealTraits()
    _check_traits(traits)
    streams = np.random.SeedSequence(seed).spawn(7)
    obs_rng, star_rng, obj_rng, det_rng, art_rng, noise_rng, trait_rng = map(
        np.random.default_rng, streams
    )
    height, width = shape
    scale_deg = pixel_scale_arcsec / 3600.0

    # Pointing, times and conditions. Draw always, so ra/dec given or not
    # leaves the other draws unchanged.
    ra_draw = obs_rng.uniform(0.0, 360.0)
    dec_draw = math.degrees(math.asin(obs_rng.uniform(-0.5, math.sin(math.radians(60.0)))))
    ra0 = float(ra_draw if ra is None else ra)
    dec0 = float(dec_draw if dec is None else dec)
    dithers = obs_rng.uniform(-dither_px, dither_px, size=(n_frames, 2)) + pointing[:2]
    rotations = obs_rng.uniform(-rotation_deg, rotation_deg, size=n_frames) + pointing[2]
    fwhm = obs_rng.uniform(*fwhm_range_px, size=n_frames)
    sigma = fwhm / _FWHM_PER_SIGMA
    sky = sky_e * obs_rng.uniform(0.85, 1.15, size=n_frames)
    gradients = obs_rng.uniform(-0.05, 0.05, size=(n_frames, 2))  # fraction across (y, x)

    start_min, block = _start_minutes(n_frames, cadence_min, exptime_s, traits)
    start = Time(mjd_start + start_min / 1440.0, format="mjd", scale="utc")
    start.precision = 3
    date_obs = list(start.isot)
    mjd_mid = Time(date_obs, format="isot", scale="utc").mjd + exptime_s / 2.0 / 86400.0

    centre = ((height - 1) / 2.0, (width - 1) / 2.0)
    ref = _wcs(crval=(ra0, dec0), shape=shape, scale_deg=scale_deg, rotation_deg=0.0)
    wander, wcs_error = _pointing_traits(
        trait_rng, (start_min - start_min[0]) / 60.0, block, traits
    )
    dithers = dithers + wander
    excursion = dither_px + float(np.max(np.abs(wander), initial=0.0))
    headers, wcses = [], []
    for k in range(n_frames):
        crval = ref.wcs_pix2world(centre[1] + dithers[k, 1], centre[0] + dithers[k, 0], 0)
        header = _wcs_header(
            crval=(float(crval[0]), float(crval[1])),
            shape=shape,
            scale_deg=scale_deg,
            rotation_deg=float(rotations[k]),
        )
        wcses.append(WCS(header))
        if wcs_error[k].any():  # the header claims the centre shows another place
            off = wcses[k].wcs_pix2world(
                centre[1] + wcs_error[k, 1], centre[0] + wcs_error[k, 0], 0
            )
            header["CRVAL1"], header["CRVAL2"] = float(off[0]), float(off[1])
        header.update(
            {
                "DATE-OBS": (date_obs[k], "UTC start of exposure"),
                "MJD-OBS": (float(Time(date_obs[k], scale="utc").mjd), "UTC MJD, exposure start"),
                "TIMESYS": ("UTC", "time scale"),
                traits.exposure_keyword: (exptime_s, "exposure time [s]"),
                "GAIN": (gain, "[e-/ADU]"),
                "RDNOISE": (read_noise_e, "read noise [e-]"),
                "SATURATE": (saturate_adu, "saturation level [ADU]"),
                "MAGZP": (zero_point, "mag of 1 ADU total flux"),
                "FILTER": (filter_name, "filter"),
                "BUNIT": ("adu", "pixel unit"),
                "OBJECT": ("SIMFIELD", "simulated field"),
                "TELESCOP": ("SIMULATED", "astrohunter.detectors.simulate"),
            }
        )
        headers.append(header)

    def sky_at(k: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        gy, gx = gradients[k]
        # Movers of a template night may be far off the chip: the sky at its edge.
        y, x = np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)
        return sky[k] * (1.0 + gy * (y - centre[0]) / height + gx * (x - centre[1]) / width)

    star_ra, star_dec, star_flux_e = _stars(
        star_rng,
        ref=ref,
        shape=shape,
        pad=excursion + math.radians(rotation_deg) * max(shape) + 10.0,
        density_arcmin2=star_density_arcmin2,
        pixel_scale_arcsec=pixel_scale_arcsec,
        sigma_px=float(np.mean(fwhm_range_px)) / _FWHM_PER_SIGMA,
        sky_e=sky_e,
        gain=gain,
        read_noise_e=read_noise_e,
        saturate_adu=saturate_adu,
        zero_point=zero_point,
    )

    # Moving objects.
    hours = (mjd_mid - mjd_mid.mean()) * 24.0
    obj = (place_movers or _place_objects)(
        obj_rng,
        n_objects=n_objects,
        rate_range=rate_range,
        ref=ref,
        wcses=wcses,
        shape=shape,
        hours=hours,
        half_exposure_h=exptime_s / 7200.0,
        margin=_EDGE_PX + excursion + math.radians(rotation_deg) * max(shape),
        **({"mjd_mid": mjd_mid} if place_movers is not None else {}),
    )
    target_snr = obj_rng.uniform(*snr_range, size=n_objects)
    obj_sky = np.array([sky_at(k, obj["y"][:, k], obj["x"][:, k]) for k in range(n_frames)]).T
    obj_flux_e = _flux_for_mean_snr(target_snr, obj_sky, read_noise_e, sigma)
    obj_snr = optimal_snr(
        obj_flux_e[:, None], sky_e=obj_sky, read_noise_e=read_noise_e, sigma_px=sigma
    )

    hot_index, hot_e, bad_columns = _defects(
        det_rng, shape=shape, hot_pixel_fraction=hot_pixel_fraction, n_bad_columns=n_bad_columns
    )
    warm_index, warm_e = _warm_pixels(
        trait_rng, shape=shape, fraction=traits.warm_pixel_fraction, noise_e=sky_e + read_noise_e**2
    )
    hot_index, hot_e = np.concatenate([hot_index, warm_index]), np.concatenate([hot_e, warm_e])
    rows_lost = trait_rng.integers(0, traits.height_loss_rows + 1, size=n_frames)

    yy = np.arange(height, dtype=np.float32)[:, None]
    xx = np.arange(width, dtype=np.float32)[None, :]
    frames = []
    for k in range(n_frames):
        star_x_k, star_y_k = wcses[k].wcs_world2pix(star_ra, star_dec, 0)
        sub_y, sub_x, sub_flux = _trail_points(obj, k, obj_flux_e, wcses[k], exptime_s)
        idx, w = _gaussian_stamps(
            np.concatenate([star_y_k, sub_y]),
            np.concatenate([star_x_k, sub_x]),
            np.concatenate([star_flux_e, sub_flux]),
            sigma=float(sigma[k]),
            shape=shape,
        )
        if art_rng.uniform() < satellite_prob:
            s_idx, s_w = _streak(art_rng, shape=shape, sigma=float(sigma[k]))
            idx, w = np.concatenate([idx, s_idx]), np.concatenate([w, s_w])
        c_idx, c_w = _cosmic_rays(
            art_rng,
            shape=shape,
            n_mean=cosmic_rays_per_mpix_min * height * width / 1e6 * exptime_s / 60.0,
        )
        idx, w = np.concatenate([idx, c_idx, hot_index]), np.concatenate([w, c_w, hot_e])
        deposited = np.bincount(idx, weights=w, minlength=height * width).reshape(shape)
        expected = deposited.astype(np.float32) + sky_at(k, yy, xx).astype(np.float32)
        for col, row0, hot_level_e in bad_columns:
            expected[row0:, col] += hot_level_e  # 0 for a dead column
        image = _add_noise(noise_rng, expected, read_noise_e) if noise else expected
        image /= gain
        for col, row0, hot_level_e in bad_columns:
            if hot_level_e == 0.0:
                image[row0:, col] *= 0.05
        np.minimum(image, saturate_adu, out=image)
        image = image[: height - int(rows_lost[k])]
        frames.append((f"sim_{k:03d}.fits", image.astype(np.float32, copy=False), headers[k]))

    truth = _truth(
        seed=seed,
        centre=(ra0, dec0),
        names=[name for name, _, _ in frames],
        mjd_mid=mjd_mid,
        pixel_scale_arcsec=pixel_scale_arcsec,
        shape=shape,
        fwhm=fwhm,
        sky=sky,
        read_noise_e=read_noise_e,
        gain=gain,
        obj=obj,
        obj_snr=obj_snr,
        obj_mag=zero_point - 2.5 * np.log10(obj_flux_e / gain),
    )
    field = SimulatedField(frames=frames, truth=truth)
    if template is not None and template.frames < 0:
        raise ValueError(f"template.frames={template.frames}: give 0 or more frames")
    if template is not None and template.frames > 0:
        if place_movers is not None:
            raise ValueError("template: a template night is not simulated for movers on orbits")
        night = simulate_field(
            **{
                **settings,
                "n_frames": template.frames,
                "mjd_start": mjd_start + template.days,
                "fwhm_range_px": template.fwhm_range_px or fwhm_range_px,
                "place_movers": _then(obj, mjd_mid),
            },
            pointing=(*template.offset_px, template.rotation_deg),
        )
        field.template = [(name.replace("sim_", "tpl_"), *rest) for name, *rest in night.frames]
        field.truth["template"] = {
            "frames": [
                {**f, "name": f["name"].replace("sim_", "tpl_")} for f in night.truth["frames"]
            ],
            "days": template.days,
        }
    return field


def _then(obj: dict[str, Any], mjd_mid: np.ndarray) -> Callable[..., dict[str, Any]]:
    """A mover placer that puts the sequence's movers where they are at other times."""

    def place(rng: np.random.Generator, *, wcses: list[WCS], **given: Any) -> dict[str, Any]:
        hours = (np.asarray(given["mjd_mid"]) - mjd_mid.mean()) * 24.0
        ra, dec = _offset_by(
            obj["ra0"][:, None],
            obj["dec0"][:, None],
            obj["pa"][:, None],
            obj["rate"][:, None] * hours[None, :] / 3600.0,
        )
        xy = [wcs.wcs_world2pix(ra[:, k], dec[:, k], 0) for k, wcs in enumerate(wcses)]
        return {
            **{key: obj[key] for key in ("rate", "pa", "ra0", "dec0")},
            "ra": ra,
            "dec": dec,
            "x": np.array([p[0] for p in xy]).T.reshape(ra.shape),
            "y": np.array([p[1] for p in xy]).T.reshape(ra.shape),
            "hours": hours,
        }

    return place


def _check(
    shape: tuple[int, int],
    n_frames: int,
    n_objects: int,
    snr_range: tuple[float, float],
    rate_range: tuple[float, float],
    cadence_min: float,
    exptime_s: float,
    fwhm_range_px: tuple[float, float],
) -> None:
    if len(shape) != 2 or min(shape) < 128:
        raise ValueError(f"shape={shape!r}: give (H, W) with both at least 128 pixels")
    if n_frames < 1 or n_objects < 0:
        raise ValueError("n_frames must be >= 1 and n_objects >= 0")
    if not 0.0 < snr_range[0] <= snr_range[1]:
        raise ValueError(f"snr_range={snr_range!r}: give (low, high) with 0 < low <= high")
    if not 0.0 < rate_range[0] <= rate_range[1]:
        raise ValueError(f"rate_range={rate_range!r}: give (low, high) arcsec/h, 0 < low <= high")
    if exptime_s <= 0.0 or cadence_min * 60.0 < exptime_s:
        raise ValueError(
            f"exptime_s={exptime_s} with cadence_min={cadence_min}: exposures must be positive "
            "and not overlap (cadence_min * 60 >= exptime_s)"
        )
    if not 0.0 < fwhm_range_px[0] <= fwhm_range_px[1]:
        raise ValueError(f"fwhm_range_px={fwhm_range_px!r}: give (low, high), 0 < low <= high")


def _check_traits(traits: RealTraits) -> None:
    if traits.blocks < 1 or traits.block_gap_min < 0.0:
        raise ValueError(
            f"traits: blocks={traits.blocks}, block_gap_min={traits.block_gap_min}: give "
            "at least one block and a gap of zero minutes or more"
        )
    if not 0 <= traits.height_loss_rows < _EDGE_PX:
        raise ValueError(
            f"traits.height_loss_rows={traits.height_loss_rows}: give 0 to {int(_EDGE_PX) - 1} "
            "rows, so every object stays inside every frame"
        )
    for name in ("warm_pixel_fraction", "drift_px_per_hour", "jump_px", "wcs_error_px"):
        if getattr(traits, name) < 0.0:
            raise ValueError(f"traits.{name}={getattr(traits, name)}: must not be negative")


def _start_minutes(
    n_frames: int, cadence_min: float, exptime_s: float, traits: RealTraits
) -> tuple[np.ndarray, np.ndarray]:
    """Exposure starts (minutes after the first) and block of each frame.

    Frames are split into ``traits.blocks`` runs of consecutive exposures at
    ``cadence_min``; each block starts ``block_gap_min`` after the previous
    one's last exposure ended.
    """
    block = np.concatenate(
        [
            np.full(part.size, b)
            for b, part in enumerate(np.array_split(np.arange(n_frames), traits.blocks))
        ]
    )
    within = np.arange(n_frames) - np.searchsorted(block, block)
    block_length = np.array([np.sum(block == b) for b in range(traits.blocks)])
    block_span = (block_length - 1) * cadence_min + exptime_s / 60.0 + traits.block_gap_min
    block_start = np.concatenate([[0.0], np.cumsum(block_span)[:-1]])
    return block_start[block] + within * cadence_min, block


def _pointing_traits(
    rng: np.random.Generator, hours: np.ndarray, block: np.ndarray, traits: RealTraits
) -> tuple[np.ndarray, np.ndarray]:
    """Pointing wander (drift plus jumps between blocks) and header-WCS errors, (y, x) pixels.

    The wander is centred on its mean, so the middle of the night sits near
    the nominal pointing and the excursion is shared by both ends. Always
    draws the same numbers, so switching one trait leaves the others' draws alone.
    """
    drift_angle = rng.uniform(0.0, 2.0 * np.pi)
    jump_angles = rng.uniform(0.0, 2.0 * np.pi, size=max(traits.blocks - 1, 1))
    error_angles = rng.uniform(0.0, 2.0 * np.pi, size=hours.size)
    drift = traits.drift_px_per_hour * hours[:, None] * [np.sin(drift_angle), np.cos(drift_angle)]
    steps = traits.jump_px * np.c_[np.sin(jump_angles), np.cos(jump_angles)]
    jumps = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])[block]
    wander = drift + jumps
    wander -= wander.mean(axis=0)
    error = traits.wcs_error_px * np.c_[np.sin(error_angles), np.cos(error_angles)]
    if hours.size > 1:
        error -= error.mean(axis=0)
    return wander, error


def _warm_pixels(
    rng: np.random.Generator, *, shape: tuple[int, int], fraction: float, noise_e: float
) -> tuple[np.ndarray, np.ndarray]:
    """Warm pixels (flat index, e- per exposure): 3-30 sky sigmas, fixed on the detector."""
    n = int(rng.binomial(shape[0] * shape[1], fraction)) if fraction > 0 else 0
    index = rng.choice(shape[0] * shape[1], size=n, replace=False)
    level = np.exp(rng.uniform(np.log(3.0), np.log(30.0), size=n)) * math.sqrt(noise_e)
    return index, level


def _stars(
    rng: np.random.Generator,
    *,
    ref: WCS,
    shape: tuple[int, int],
    pad: float,
    density_arcmin2: float,
    pixel_scale_arcsec: float,
    sigma_px: float,
    sky_e: float,
    gain: float,
    read_noise_e: float,
    saturate_adu: float,
    zero_point: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Star ``ra``, ``dec`` (deg) and flux (e-), fixed on the sky around the field.

    Counts rise 0.3 dex per magnitude from 2 mag brighter than saturation to
    half a magnitude below SNR 1; a few extra saturated stars make sure even
    a small field has some.
    """
    height, width = shape
    flux_sat_adu = (saturate_adu - sky_e / gain) * 2.0 * np.pi * sigma_px**2
    m_bright = zero_point - 2.5 * math.log10(flux_sat_adu) - 2.0
    flux_snr1 = flux_for_snr(1.0, sky_e=sky_e, read_noise_e=read_noise_e, sigma_px=sigma_px)
    m_faint = zero_point - 2.5 * math.log10(float(flux_snr1) / gain) + 0.5
    arcmin2_per_px = (pixel_scale_arcsec / 60.0) ** 2
    n = int(rng.poisson(density_arcmin2 * (height + 2 * pad) * (width + 2 * pad) * arcmin2_per_px))
    y = rng.uniform(-pad, height - 1 + pad, size=n)
    x = rng.uniform(-pad, width - 1 + pad, size=n)
    lo, hi = 10.0 ** (0.3 * m_bright), 10.0 ** (0.3 * m_faint)
    mag = np.log10(lo + rng.uniform(size=n) * (hi - lo)) / 0.3
    n_sat = math.ceil(0.002 * density_arcmin2 * height * width * arcmin2_per_px)
    y = np.append(y, rng.uniform(0.0, height - 1, size=n_sat))
    x = np.append(x, rng.uniform(0.0, width - 1, size=n_sat))
    mag = np.append(mag, rng.uniform(m_bright, m_bright + 1.7, size=n_sat))
    ra, dec = ref.wcs_pix2world(x, y, 0)
    return ra, dec, gain * 10.0 ** (0.4 * (zero_point - mag))


def _defects(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int],
    hot_pixel_fraction: float,
    n_bad_columns: int,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, float]]]:
    """Hot pixels (flat index, e- per exposure) and bad columns, fixed on the detector.

    Each bad column is ``(column, first row, hot level e-)``: bad from its
    first row to the last, hot by that level, or dead (reads 5 %) when it is 0.
    """
    height, width = shape
    n_hot = int(rng.binomial(height * width, hot_pixel_fraction))
    hot_index = rng.choice(height * width, size=n_hot, replace=False)
    hot_e = np.exp(rng.uniform(np.log(500.0), np.log(50000.0), size=n_hot))
    columns = []
    for col in rng.choice(width, size=min(n_bad_columns, width), replace=False):
        row0 = 0 if rng.uniform() < 0.5 else int(rng.integers(0, height // 2))
        level = 0.0 if rng.uniform() < 0.5 else float(rng.uniform(300.0, 3000.0))
        columns.append((int(col), row0, level))
    return hot_index, hot_e, columns


def _truth(
    *,
    seed: int,
    centre: tuple[float, float],
    names: list[str],
    mjd_mid: np.ndarray,
    pixel_scale_arcsec: float,
    shape: tuple[int, int],
    fwhm: np.ndarray,
    sky: np.ndarray,
    read_noise_e: float,
    gain: float,
    obj: dict[str, np.ndarray],
    obj_snr: np.ndarray,
    obj_mag: np.ndarray,
) -> dict[str, Any]:
    """The truth dict, plain Python types only (JSON-serialisable)."""
    n_frames = len(names)
    return {
        "seed": int(seed),
        "field": {
            "ra": float(centre[0]),
            "dec": float(centre[1]),
            "frames": n_frames,
            "mjd_start": float(mjd_mid[0]),
            "mjd_end": float(mjd_mid[-1]),
            "pixel_scale_arcsec": float(pixel_scale_arcsec),
            "shape": [int(shape[0]), int(shape[1])],
        },
        "frames": [
            {
                "name": names[k],
                "mjd_mid": float(mjd_mid[k]),
                "fwhm_px": float(fwhm[k]),
                "sky_e": float(sky[k]),
                "read_noise_e": float(read_noise_e),
                "gain": float(gain),
            }
            for k in range(n_frames)
        ],
        "objects": [
            {
                "id": f"T{i:03d}",
                **(obj["labels"][i] if "labels" in obj else {}),
                "snr": float(obj_snr[i].mean()),
                "rate_arcsec_per_hour": float(obj["rate"][i]),
                "position_angle_deg": float(obj["pa"][i]),
                "mag": float(obj_mag[i]),
                "observations": [
                    {
                        "frame": names[k],
                        "mjd": float(mjd_mid[k]),
                        "ra": float(obj["ra"][i, k]),
                        "dec": float(obj["dec"][i, k]),
                        "x": float(obj["x"][i, k]),
                        "y": float(obj["y"][i, k]),
                        "snr": float(obj_snr[i, k]),
                    }
                    for k in range(n_frames)
                ],
            }
            for i in range(obj_snr.shape[0])
        ],
    }


def _wcs_header(
    *, crval: tuple[float, float], shape: tuple[int, int], scale_deg: float, rotation_deg: float
) -> fits.Header:
    """TAN header, north up and east left, rotated by ``rotation_deg``."""
    c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    header = fits.Header()
    header.update(
        {
            "WCSAXES": 2,
            "CTYPE1": "RA---TAN",
            "CTYPE2": "DEC--TAN",
            "CUNIT1": "deg",
            "CUNIT2": "deg",
            "RADESYS": "ICRS",
            "CRVAL1": crval[0],
            "CRVAL2": crval[1],
            "CRPIX1": shape[1] / 2.0 + 0.5,
            "CRPIX2": shape[0] / 2.0 + 0.5,
            "CD1_1": -scale_deg * c,
            "CD1_2": scale_deg * s,
            "CD2_1": scale_deg * s,
            "CD2_2": scale_deg * c,
        }
    )
    return header


def _wcs(
    *, crval: tuple[float, float], shape: tuple[int, int], scale_deg: float, rotation_deg: float
) -> WCS:
    return WCS(
        _wcs_header(crval=crval, shape=shape, scale_deg=scale_deg, rotation_deg=rotation_deg)
    )


def _offset_by(ra: Any, dec: Any, pa_deg: Any, dist_deg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Move ``dist_deg`` along the great circle leaving (ra, dec) at ``pa_deg``."""
    ra1, dec1, pa, d = (np.radians(v) for v in (ra, dec, pa_deg, dist_deg))
    sin_dec2 = np.sin(dec1) * np.cos(d) + np.cos(dec1) * np.sin(d) * np.cos(pa)
    dec2 = np.arcsin(np.clip(sin_dec2, -1.0, 1.0))
    dra = np.arctan2(np.sin(pa) * np.sin(d) * np.cos(dec1), np.cos(d) - np.sin(dec1) * sin_dec2)
    return np.degrees(ra1 + dra) % 360.0, np.degrees(dec2)


def _place_objects(
    rng: np.random.Generator,
    *,
    n_objects: int,
    rate_range: tuple[float, float],
    ref: WCS,
    wcses: list[WCS],
    shape: tuple[int, int],
    hours: np.ndarray,
    half_exposure_h: float,
    margin: float,
) -> dict[str, np.ndarray]:
    """Draw motions and mid-night positions, keeping whole tracks inside every frame.

    Returns per-object ``rate``, ``pa``, ``ra0``/``dec0`` (at ``hours == 0``)
    and per-object-per-frame mid-exposure ``ra``, ``dec``, ``x``, ``y``.
    """
    height, width = shape
    kept: dict[str, list[np.ndarray]] = {key: [] for key in ("rate", "pa", "ra0", "dec0")}
    n_kept = 0
    for _ in range(200):
        n = 4 * n_objects + 1
        rate = np.exp(rng.uniform(np.log(rate_range[0]), np.log(rate_range[1]), size=n))
        pa = rng.uniform(0.0, 360.0, size=n)
        y0 = rng.uniform(margin, height - 1 - margin, size=n)
        x0 = rng.uniform(margin, width - 1 - margin, size=n)
        ra0, dec0 = ref.wcs_pix2world(x0, y0, 0)
        ok = np.ones(n, dtype=bool)
        for k, wcs in enumerate(wcses):
            for h in (hours[k] - half_exposure_h, hours[k] + half_exposure_h):
                ra, dec = _offset_by(ra0, dec0, pa, rate * h / 3600.0)
                x, y = wcs.wcs_world2pix(ra, dec, 0)
                ok &= (x >= _EDGE_PX) & (x <= width - 1 - _EDGE_PX)
                ok &= (y >= _EDGE_PX) & (y <= height - 1 - _EDGE_PX)
        for key, value in zip(("rate", "pa", "ra0", "dec0"), (rate, pa, ra0, dec0), strict=True):
            kept[key].append(value[ok])
        n_kept += int(ok.sum())
        if n_kept >= n_objects:
            break
    if n_kept < n_objects:
        raise ValueError(
            f"could not keep objects moving at up to {rate_range[1]} arcsec/h inside a "
            f"{shape} field for the whole night: lower rate_range or enlarge shape"
        )
    out = {key: np.concatenate(value)[:n_objects] for key, value in kept.items()}
    ra, dec = _offset_by(
        out["ra0"][:, None],
        out["dec0"][:, None],
        out["pa"][:, None],
        out["rate"][:, None] * hours[None, :] / 3600.0,
    )
    xy = [wcs.wcs_world2pix(ra[:, k], dec[:, k], 0) for k, wcs in enumerate(wcses)]
    out.update(
        ra=ra,
        dec=dec,
        x=np.array([p[0] for p in xy]).T.reshape(n_objects, len(wcses)),
        y=np.array([p[1] for p in xy]).T.reshape(n_objects, len(wcses)),
        hours=hours,
    )
    return out


def _flux_for_mean_snr(
    target: np.ndarray, sky: np.ndarray, read_noise_e: float, sigma: np.ndarray
) -> np.ndarray:
    """Constant flux per object whose per-frame SNR averages to ``target``.

    SNR grows as F**p with p in [0.5, 1], so rescaling by the ratio converges.
    """
    flux = flux_for_snr(
        target, sky_e=sky.mean(axis=1), read_noise_e=read_noise_e, sigma_px=sigma.mean()
    )
    for _ in range(8):
        mean = optimal_snr(
            flux[:, None], sky_e=sky, read_noise_e=read_noise_e, sigma_px=sigma
        ).mean(axis=1)
        flux = flux * target / np.maximum(mean, 1e-12)
    return flux


def _trail_points(
    obj: dict[str, Any], k: int, flux_e: np.ndarray, wcs: WCS, exptime_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-exposure positions of every object in frame ``k``, one per <= 0.25 px of trail."""
    scale_arcsec = float(np.sqrt(abs(np.linalg.det(wcs.wcs.cd)))) * 3600.0
    length_px = obj["rate"] * exptime_s / 3600.0 / scale_arcsec
    n_sub = np.maximum(1, np.ceil(length_px / 0.25)).astype(int)
    owner = np.repeat(np.arange(n_sub.size), n_sub)
    step = np.arange(owner.size) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub)
    frac = (step + 0.5) / n_sub[owner] - 0.5  # -0.5 .. 0.5 of the exposure
    h = obj["hours"][k] + frac * exptime_s / 3600.0
    if "positions" in obj:  # real orbits: ask the ephemeris
        ra, dec = obj["positions"](owner, obj["mjd_mid"][k] + frac * exptime_s / 86400.0)
    else:
        ra, dec = _offset_by(
            obj["ra0"][owner], obj["dec0"][owner], obj["pa"][owner], obj["rate"][owner] * h / 3600.0
        )
    x, y = wcs.wcs_world2pix(ra, dec, 0)
    return y, x, flux_e[owner] / n_sub[owner]


def _gaussian_stamps(
    y: np.ndarray, x: np.ndarray, flux: np.ndarray, *, sigma: float, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-integrated Gaussians in small stamps, as flat indices and weights.

    Separable: each stamp is the outer product of two 1-D integrals (erf
    differences), so N sources cost N * (2 hw + 1)^2 multiplies, not N * H * W.
    """
    height, width = shape
    hw = math.ceil(6.0 * sigma)
    inside = (y > -hw) & (y < height - 1 + hw) & (x > -hw) & (x < width - 1 + hw)
    y, x, flux = y[inside], x[inside], flux[inside]
    offsets = np.arange(-hw, hw + 1)
    iy = np.rint(y).astype(np.int64)[:, None] + offsets
    ix = np.rint(x).astype(np.int64)[:, None] + offsets
    scale = math.sqrt(2.0) * sigma

    def profile(i: np.ndarray, c: np.ndarray) -> np.ndarray:
        edges = erf((np.concatenate([i - 0.5, i[:, -1:] + 0.5], axis=1) - c[:, None]) / scale)
        return 0.5 * np.diff(edges, axis=1)

    weights = flux[:, None, None] * profile(iy, y)[:, :, None] * profile(ix, x)[:, None, :]
    rows = np.broadcast_to(iy[:, :, None], weights.shape)
    cols = np.broadcast_to(ix[:, None, :], weights.shape)
    ok = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    return (rows * width + cols)[ok], weights[ok]


def _streak(
    rng: np.random.Generator, *, shape: tuple[int, int], sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """A satellite: a straight line across the frame with a Gaussian profile."""
    height, width = shape
    y0, x0 = rng.uniform(0, height), rng.uniform(0, width)
    angle = rng.uniform(0.0, np.pi)
    per_px = math.exp(rng.uniform(math.log(300.0), math.log(30000.0)))  # e- per pixel of length
    c, s = math.cos(angle), math.sin(angle)
    along_x = abs(c) >= abs(s)
    n_along, n_across = (width, height) if along_x else (height, width)
    slope = s / c if along_x else c / s
    u = np.arange(n_along)
    centre = (y0 + slope * (u - x0)) if along_x else (x0 + slope * (u - y0))
    hw = math.ceil(5.0 * sigma * math.hypot(1.0, slope))
    v = np.floor(centre)[:, None].astype(np.int64) + np.arange(-hw, hw + 1)
    dist = (v - centre[:, None]) / math.hypot(1.0, slope)
    w = per_px / (math.sqrt(2.0 * np.pi) * sigma) * np.exp(-0.5 * (dist / sigma) ** 2)
    uu = np.broadcast_to(u[:, None], v.shape)
    ok = (v >= 0) & (v < n_across)
    idx = v * width + uu if along_x else uu * width + v
    return idx[ok], w[ok]


def _cosmic_rays(
    rng: np.random.Generator, *, shape: tuple[int, int], n_mean: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sharp hits of 1-3 adjacent pixels, 300-20000 e- each, not seen through the PSF."""
    height, width = shape
    n = int(rng.poisson(n_mean))
    length = rng.integers(1, 4, size=n)
    step = rng.choice([-1, 0, 1], size=(n, 2))
    step[(step == 0).all(axis=1)] = (0, 1)
    start = np.column_stack([rng.integers(0, height, n), rng.integers(0, width, n)])
    k = np.arange(3)
    y = start[:, :1] + step[:, :1] * k
    x = start[:, 1:] + step[:, 1:] * k
    energy = np.exp(rng.uniform(math.log(300.0), math.log(20000.0), size=(n, 3)))
    ok = (k < length[:, None]) & (y >= 0) & (y < height) & (x >= 0) & (x < width)
    return (y * width + x)[ok], energy[ok]


def _add_noise(rng: np.random.Generator, expected: np.ndarray, read_noise_e: float) -> np.ndarray:
    """Poisson + read noise in electrons.

    Poisson is drawn exactly below 100 e- and as its Gaussian limit above
    (skewness < 0.1 there), which makes a 2048^2 frame three times faster.
    """
    lam = np.maximum(expected, 0.0)
    z = rng.standard_normal(lam.shape, dtype=np.float32)
    image = lam + np.sqrt(lam + np.float32(read_noise_e**2)) * z
    low = lam < _GAUSS_POISSON_E
    if low.any():
        image[low] = rng.poisson(lam[low]).astype(np.float32) + read_noise_e * z[low]
    return image
