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
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .backend import Array

if TYPE_CHECKING:
    from .faint import FaintSeeds

__all__ = [
    "FWHM_PER_SIGMA",
    "Candidates",
    "Differences",
    "FastResult",
    "Frame",
    "Mover",
    "Progress",
    "Registration",
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
    wcs : astropy.wcs.WCS or None
        Celestial WCS of ``data``; None when the file has none (the frame
        is then placed by registering it on the stars).
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
    origin : (int, int)
        Detector pixel ``(y, x)`` of ``data[0, 0]`` (frames cut or trimmed
        differently still share detector defects through it).
    """

    data: Array
    wcs: WCS | None
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
    origin: tuple[int, int] = (0, 0)

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
    reference grid; ``ra``/``dec`` are ICRS degrees (NaN when the frames
    have no sky solution); errors are in arcsec; ``mag`` is NaN where no
    photometric zero point is known. ``frame_x``/``frame_y`` are the
    positions in each frame's own pixels, and ``astrometry`` says where the
    sky positions come from (see :class:`SkySolution`).
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
    frame_x: Array | None = None
    frame_y: Array | None = None
    astrometry: str = "wcs"


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
    registration : Registration or None
        How each frame maps onto the common grid (None in results saved
        before registration existed).
    sky : SkySolution or None
        Where the common grid is on the sky (``wcs`` above is its WCS).
    detector_fixed : int
        Tracks the detailed detector dropped as fixed on the detector.
    template : dict
        Which template the differences subtract and its depth
        (`detectors.template`), for the ``run`` block.
    slow : list of Mover
        Slow movers (found on the whole field by the fast detector).
    faint : FaintSeeds or None
        Peaks of the faint search's motion grid, for the detailed detector
        to refine and check (None when the faint search is off).
    faint_kept : bool array, shape (N, H, W), or None
        Pixels the faint search used (single-frame outliers and static
        sources left out); what the work file keeps of it is in ``faint_maps``.
    faint_maps : (psi, phi) arrays, shape (N, H, W) each, or None
        psi and phi where the faint search kept pixels, zero elsewhere: what
        the refinement of its seeds reads (set when handed over; else made
        from ``faint_kept``).
    devices : dict
        Device that ran each timed stage (``cpu`` or ``gpu (<model>)``).
    """

    mjd: Array
    wcs: WCS | None
    ref: int
    zero_point: float | None
    differences: Differences
    candidates: Candidates
    tracklets: list[Array]
    timings: dict[str, float]
    #: Rates actually searched (px/day) where a plan narrowed the request, and why.
    limits: dict[str, float | str] = field(default_factory=dict)
    registration: Registration | None = None
    sky: SkySolution | None = None
    detector_fixed: int = 0
    template: dict = field(default_factory=dict)
    slow: list[Mover] = field(default_factory=list)
    faint: FaintSeeds | None = None
    faint_kept: Array | None = field(default=None, repr=False)
    faint_maps: tuple[Array, Array] | None = field(default=None, repr=False)
    devices: dict[str, str] = field(default_factory=dict)

    @property
    def pixels_per_day(self) -> float:
        """Pixels per day of one arcsec per hour on this grid."""
        if self.sky is not None:
            return 24.0 / self.sky.pixel_scale
        return 24.0 / (float(np.mean(proj_plane_pixel_scales(self.wcs))) * 3600.0)


@dataclass
class SkySolution:
    """Where the reference grid's pixels are on the sky, and how well that is known.

    Attributes
    ----------
    wcs : WCS or None
        Celestial WCS of the reference grid; None when nothing places the
        frames on the sky (tracks are then given in pixels only).
    astrometry : str
        ``wcs``: the frames' own WCS (their consensus, through the star
        registration); ``solved``: plate-solved here from the reference
        frame's stars; ``approximate``: from the header's pointing and a
        nominal pixel scale, good to arcminutes, not for MPC reports;
        ``none``: no sky positions.
    pixel_scale : float
        Arcsec per pixel of the reference grid (rates need it even without a WCS).
    note : str
        One sentence for the output's ``run`` block.
    """

    wcs: WCS | None
    astrometry: str
    pixel_scale: float
    note: str


@dataclass
class Registration:
    """How each frame's own pixels map onto the reference grid.

    The mapping is smooth, so it is kept exactly on a coarse grid of
    reference pixels and interpolated (cubic) in between.

    Attributes
    ----------
    ref : int
        Index of the reference frame, whose pixel grid is the common one.
    grid_y, grid_x : ndarray, shape (ny,), (nx,)
        Reference-grid rows and columns where the mapping is evaluated.
    map_y, map_x : ndarray, shape (N, ny, nx)
        Position in frame ``k``'s own pixels of each coarse grid point.
    origin : ndarray of int, shape (N, 2)
        Detector pixel ``(y, x)`` of each frame's first pixel.
    method : list of str
        Per frame: ``reference``, ``wcs+stars`` (WCS corrected on the stars),
        ``stars`` (no WCS: the stars alone) or ``wcs`` (the stars agree with
        the WCS within their noise, or the field has too few to tell).
    stars : ndarray of int, shape (N,)
        Stars matched with the reference frame (0 where not registered on stars).
    rms_px : ndarray, shape (N,)
        RMS of the matched stars about the fitted mapping, pixels (NaN where none).
    """

    ref: int
    grid_y: Array
    grid_x: Array
    map_y: Array
    map_x: Array
    origin: Array
    method: list[str]
    stars: Array
    rms_px: Array
    #: Frame ``k``'s (x, y) splines, built once: every track asks for every frame.
    _splines: dict[int, tuple] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def one_frame(
        cls,
        grid: tuple[Array, Array],
        maps: tuple[Array, Array],
        *,
        method: str = "wcs",
        stars: int = 0,
        rms_px: float = float("nan"),
    ) -> Registration:
        """The mapping of a single frame (``maps``: its ``y, x`` on the ``grid`` rows, columns)."""
        return cls(
            ref=0,
            grid_y=grid[0],
            grid_x=grid[1],
            map_y=maps[0][None],
            map_x=maps[1][None],
            origin=np.zeros((1, 2), dtype=int),
            method=[method],
            stars=np.array([stars]),
            rms_px=np.array([rms_px]),
        )

    def to_frame(self, k: int, x: Array, y: Array) -> tuple[Array, Array]:
        """Frame ``k``'s own pixel ``(x, y)`` of reference-grid points ``(x, y)``."""
        from scipy.interpolate import RectBivariateSpline

        if k not in self._splines:
            ky, kx = min(3, self.grid_y.size - 1), min(3, self.grid_x.size - 1)
            self._splines[k] = tuple(
                RectBivariateSpline(self.grid_y, self.grid_x, values, kx=ky, ky=kx)
                for values in (self.map_x[k], self.map_y[k])
            )
        yy, xx = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
        return self._splines[k][0].ev(yy, xx), self._splines[k][1].ev(yy, xx)

    def dense(self, k: int, shape: tuple[int, int]) -> tuple[Array, Array]:
        """Frame ``k``'s own pixel ``(y, x)`` of every reference pixel, float32 (H, W) each."""
        from scipy.interpolate import RectBivariateSpline

        ky, kx = min(3, self.grid_y.size - 1), min(3, self.grid_x.size - 1)
        yy, xx = np.arange(shape[0], dtype=float), np.arange(shape[1], dtype=float)
        return tuple(
            RectBivariateSpline(self.grid_y, self.grid_x, values, kx=ky, ky=kx)(yy, xx).astype(
                np.float32
            )
            for values in (self.map_y[k], self.map_x[k])
        )
