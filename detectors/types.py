"""The data that passes between stages.

Conventions, everywhere in ``detectors``:

- pixel coordinates are 0-based and arrays are indexed ``[y, x]``;
- NaN in an image means "no data" (outside the chip, masked, blank);
- times are UTC MJD at mid-exposure;
- pixel values are ADU as read from the file; ``gain`` turns them into electrons.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .backend import Array

__all__ = [
    "FWHM_PER_SIGMA",
    "Candidates",
    "Differences",
    "FastResult",
    "Frame",
    "Mover",
    "Progress",
    "Track",
]

#: FWHM of a Gaussian PSF in units of its sigma, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

#: ``progress(stage, done, total)``: called as each stage of a search advances.
Progress = Callable[[str, int, int], None]


@dataclass
class Frame:
    """One exposure, as read from one FITS file.

    Attributes
    ----------
    data : ndarray, shape (H, W), float32
        Pixel values in ADU, NaN where there is no data.
    wcs : astropy.wcs.WCS
        Celestial WCS of ``data``.
    mjd : float
        UTC MJD at mid-exposure.
    exptime : float
        Exposure time in seconds (0 when the file does not say).
    name : str
        Source file name (no directory), used in reports and error messages.
    gain : float or None
        e-/ADU, when the header gives it.
    read_noise : float or None
        Read noise in electrons, when the header gives it.
    saturation : float or None
        ADU level at and above which pixels are saturated or non-linear.
    zero_point : float or None
        Magnitude of a source whose total flux is 1 ADU in this exposure:
        ``mag = zero_point - 2.5 log10(flux_adu)``.
    filter : str or None
        Filter name, for the MPC report's magnitude band.
    observatory_code : str or None
        MPC observatory code when the header names one.
    bad : ndarray of bool, shape (H, W), or None
        Pixels the file itself marks bad (a data-quality extension).
    header : astropy.io.fits.Header
        The image header, kept for reports.
    """

    data: Array
    wcs: WCS
    mjd: float
    exptime: float
    name: str
    gain: float | None = None
    read_noise: float | None = None
    saturation: float | None = None
    zero_point: float | None = None
    filter: str | None = None
    observatory_code: str | None = None
    bad: Array | None = None
    header: fits.Header = field(default_factory=fits.Header)

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.data.shape
        return int(h), int(w)


@dataclass
class Candidates:
    """Per-frame detections on the difference images, all frames together.

    Every attribute is a 1-D NumPy array of the same length; ``frame`` is the
    frame index, positions are on the common (reference) pixel grid.
    """

    frame: Array
    y: Array
    x: Array
    flux: Array
    snr: Array

    def __len__(self) -> int:
        return int(self.frame.size)

    @classmethod
    def empty(cls) -> Candidates:
        z = np.zeros(0)
        return cls(frame=z.astype(np.int64), y=z, x=z, flux=z, snr=z)

    def take(self, index: Array) -> Candidates:
        return Candidates(
            frame=self.frame[index],
            y=self.y[index],
            x=self.x[index],
            flux=self.flux[index],
            snr=self.snr[index],
        )


@dataclass
class Track:
    """One moving object: its motion and its measurement in each frame.

    Per-frame arrays have one entry per frame where the object was measured
    (``frames`` holds those frame indices). Positions ``y``/``x`` are on the
    reference grid; ``ra``/``dec`` are ICRS degrees; errors are in arcsec;
    ``mag`` is NaN where no photometric zero point is known.
    """

    frames: Array
    mjd: Array
    y: Array
    x: Array
    ra: Array
    dec: Array
    ra_err_arcsec: Array
    dec_err_arcsec: Array
    flux: Array
    snr: Array
    mag: Array
    rate_arcsec_per_hour: float
    position_angle_deg: float
    stacked_snr: float
    origin: str = "fast"
    id: str = ""


@dataclass
class Mover:
    """An object found by the slow-mover or the faint search, before it is a Track.

    Per-frame arrays have one entry per frame in ``frames``; positions and
    errors are on the reference grid, in pixels.

    Attributes
    ----------
    frames : ndarray of int, shape (M,)
        Indices of the frames the object was measured in.
    x, y, err : ndarray, shape (M,)
        Positions on the fitted path and their 1-sigma errors.
    flux, snr : ndarray, shape (M,)
        Per-frame flux (reference-frame ADU) and SNR.
    stacked : float
        SNR of all its frames together.
    vel : (float, float)
        Motion in pixels per day, ``(vx, vy)``.
    """

    frames: Array
    x: Array
    y: Array
    err: Array
    flux: Array
    snr: Array
    stacked: float
    vel: tuple[float, float]


@dataclass
class Differences:
    """Difference images and their PSF-matched-filter maps.

    Attributes
    ----------
    diff : xp array, shape (N, H, W), float32
        Scaled frame minus template, in reference-frame ADU; NaN = no data.
    psi, phi : xp arrays, shape (N, H, W), float32
        ``psi = PSF * (D / var)``, ``phi = PSF^2 * (1 / var)``; flux of a
        point source at a pixel is ``psi / phi``, its SNR ``psi / sqrt(phi)``.
    template : xp array, shape (H, W), float32
        The static sky (median of the scaled, background-subtracted frames).
    scale : ndarray, shape (N,)
        Flux scale of each frame relative to the reference frame.
    psf_sigma : ndarray, shape (N,)
        Gaussian PSF sigma of each frame in pixels.
    noise : ndarray, shape (N,)
        Empirical correction applied to ``phi`` (1 for ideal white noise).
    """

    diff: Array
    psi: Array
    phi: Array
    template: Array
    scale: Array
    psf_sigma: Array
    noise: Array

    def snr(self, i: int) -> Array:
        """SNR map of a point source centred at each pixel of frame ``i``."""
        from .backend import get_xp

        xp = get_xp(self.psi)
        return self.psi[i] / xp.sqrt(xp.maximum(self.phi[i], 1e-30))

    @property
    def fwhm(self) -> float:
        """Median PSF FWHM of the frames, pixels."""
        return FWHM_PER_SIGMA * float(np.median(self.psf_sigma))


@dataclass
class FastResult:
    """What the fast detector hands to the detailed detector.

    Attributes
    ----------
    mjd : ndarray, shape (N,)
        Mid-exposure UTC MJD of each frame.
    wcs : WCS
        Celestial WCS of the common pixel grid.
    ref : int
        Index of the reference frame.
    zero_point : float or None
        Magnitude of 1 ADU in the reference frame.
    differences : Differences
    candidates : Candidates
    tracklets : list of int arrays
        Candidate indices of each linked tracklet.
    timings : dict
        Seconds per stage so far.
    trajectories_tested, faint_binning, faint_threshold
        What the faint search did (filled in by the stage that runs it).
    """

    mjd: Array
    wcs: WCS
    ref: int
    zero_point: float | None
    differences: Differences
    candidates: Candidates
    tracklets: list[Array]
    timings: dict[str, float]
    trajectories_tested: int = 0
    faint_binning: int = 1
    faint_threshold: float | None = None
    #: Rates actually searched (px/day) where a plan narrowed the request, and why.
    limits: dict[str, float | str] = field(default_factory=dict)

    @property
    def pixels_per_day(self) -> float:
        """Pixels per day of one arcsec per hour on this grid."""
        return 24.0 / (float(np.mean(proj_plane_pixel_scales(self.wcs))) * 3600.0)
