"""The data that passes between stages.

Conventions, everywhere in ``detectors``:

- pixel coordinates are 0-based and arrays are indexed ``[y, x]``;
- NaN in an image means "no data" (outside the chip, masked, blank);
- times are UTC MJD at mid-exposure;
- pixel values are ADU as read from the file; ``gain`` turns them into electrons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

__all__ = ["Candidates", "Frame", "Track"]


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

    data: np.ndarray
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
    bad: np.ndarray | None = None
    header: fits.Header = field(default_factory=fits.Header)

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape  # type: ignore[return-value]


@dataclass
class Candidates:
    """Per-frame detections on the difference images, all frames together.

    Every attribute is a 1-D NumPy array of the same length; ``frame`` is the
    frame index, positions are on the common (reference) pixel grid.
    """

    frame: np.ndarray
    y: np.ndarray
    x: np.ndarray
    flux: np.ndarray
    snr: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.size)

    @classmethod
    def empty(cls) -> Candidates:
        z = np.zeros(0)
        return cls(frame=z.astype(np.int64), y=z, x=z, flux=z, snr=z)

    def take(self, index: np.ndarray) -> Candidates:
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

    frames: np.ndarray
    mjd: np.ndarray
    y: np.ndarray
    x: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    ra_err_arcsec: np.ndarray
    dec_err_arcsec: np.ndarray
    flux: np.ndarray
    snr: np.ndarray
    mag: np.ndarray
    rate_arcsec_per_hour: float
    position_angle_deg: float
    stacked_snr: float
    origin: str = "fast"
    id: str = ""
