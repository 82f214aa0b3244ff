"""Search settings: one table of defaults, each checked with a message that says the fix."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .backend import Device
from .errors import InputError

__all__ = ["SearchConfig"]


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """How to search a sequence of frames.

    Attributes
    ----------
    rate_min, rate_max : float
        Range of sky motion searched, arcsec per hour.
    threshold : float
        Per-frame matched-filter SNR of a candidate.
    min_detections : int or None
        Frames a tracklet must be detected in (None: 40% of frames, at least 3).
    link_radius : float
        Pixels between a predicted and a detected position when linking.
    min_stacked_snr : float
        Stacked SNR a track needs to be reported.
    device : {"cpu", "gpu"}
        Where the fast detector's array work runs.
    faint : bool
        Run the faint (shift-and-stack) search when this version has one.
    """

    rate_min: float = 1.0
    rate_max: float = 150.0
    threshold: float = 3.5
    min_detections: int | None = None
    link_radius: float = 1.5
    min_stacked_snr: float = 7.0
    device: Device = "cpu"
    faint: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.rate_min < self.rate_max:
            raise InputError(
                f"rate range {self.rate_min}-{self.rate_max} arcsec/h is empty: "
                "give 0 <= --rate-min < --rate-max"
            )
        for name in ("threshold", "link_radius", "min_stacked_snr"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.min_detections is not None and self.min_detections < 3:
            raise InputError("min_detections must be at least 3 (a line needs 3 points)")
        if self.device not in ("cpu", "gpu"):
            raise InputError(f"device must be 'cpu' or 'gpu', got {self.device!r}")

    def as_dict(self) -> dict:
        """The settings as a JSON-safe dict, for the output's ``run`` block."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
