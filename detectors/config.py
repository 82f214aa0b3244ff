"""Search settings: one table declares each one (default, unit, help, limits).

Every place a setting appears - :class:`SearchConfig` (the engine), the
API's ``SearchRequest`` and the command line's options - reads its default,
its limits and its help from :data:`PARAMETERS`, so they cannot disagree.
KBMOD keeps its options the same way (one ``_SUPPORTED_PARAMS`` table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from .backend import Device
from .errors import InputError

__all__ = ["PARAMETERS", "Parameter", "SearchConfig", "default"]


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """One setting: its name, default, unit, help and limits.

    Attributes
    ----------
    name : str
        Python name; the command line spells it ``--name-with-dashes``.
    default : object
        Value when not given (None where "automatic").
    kind : type
        ``float``, ``int``, ``bool`` or ``str``.
    unit : str
        Unit of the value ("" when none).
    help : str
        What it does, in a line.
    gt, ge, le : float or None
        Limits of a number (exclusive above zero, inclusive, inclusive).
    choices : tuple of str, optional
        Allowed values of a string.
    scopes : frozenset of str
        Where it appears: ``engine`` (SearchConfig), ``request`` (POST
        /search and ``astrohunter search``), ``detect`` (``astrohunter
        detect``).
    """

    name: str
    default: Any
    kind: type
    unit: str
    help: str
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    scopes: frozenset[str] = frozenset({"engine", "request", "detect"})

    @property
    def option(self) -> str:
        """The command-line option, e.g. ``--rate-min``."""
        return "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """Help text with unit and default, for the CLI and the API docs."""
        unit = f", {self.unit}" if self.unit else ""
        shown = "automatic" if self.default is None else self.default
        return f"{self.help}{unit} (default {shown})"

    @property
    def _named(self) -> str:
        return f"{self.name} ({self.option})"

    def check(self, value: Any) -> None:
        """Raise `InputError` naming the setting when ``value`` breaks its limits."""
        if value is None and self.default is None:
            return
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is str:
            ok = isinstance(value, str)
        else:  # a number, never a bool (True is not 1.0 here)
            allowed = int if self.kind is int else (int, float)
            ok = isinstance(value, allowed) and not isinstance(value, bool)
        if not ok:
            raise InputError(f"{self._named}: must be a {self.kind.__name__}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise InputError(
                f"{self._named}: must be one of {', '.join(self.choices)}, got {value!r}"
            )
        if self.kind in (int, float):
            if not math.isfinite(value):
                raise InputError(f"{self._named}: must be a finite number, got {value!r}")
            for bound, holds, text in (
                (self.gt, lambda b: value > b, "above"),
                (self.ge, lambda b: value >= b, "at least"),
                (self.le, lambda b: value <= b, "at most"),
            ):
                if bound is not None and not holds(bound):
                    raise InputError(f"{self._named}: must be {text} {bound:g}, got {value!r}")


_ENGINE = frozenset({"engine", "detect"})

#: Every search setting, once.
PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter(
            name="rate_min",
            default=1.0,
            kind=float,
            unit="arcsec/h",
            help="slowest sky motion searched",
            ge=0.0,
            le=36000.0,
        ),
        Parameter(
            name="rate_max",
            default=150.0,
            kind=float,
            unit="arcsec/h",
            help="fastest sky motion searched",
            gt=0.0,
            le=36000.0,
        ),
        Parameter(
            name="faint",
            default=True,
            kind=bool,
            unit="",
            help="run the faint (shift-and-stack) search after the per-frame one",
        ),
        Parameter(
            name="threshold",
            default=3.5,
            kind=float,
            unit="sigma",
            help="per-frame matched-filter SNR of a candidate",
            gt=0.0,
            scopes=_ENGINE,
        ),
        Parameter(
            name="min_detections",
            default=None,
            kind=int,
            unit="frames",
            help="frames a tracklet must be detected in (automatic: 40 percent of frames, at least 3)",
            ge=3,
            scopes=frozenset({"engine"}),
        ),
        Parameter(
            name="link_radius",
            default=1.5,
            kind=float,
            unit="px",
            help="distance between a predicted and a detected position when linking",
            gt=0.0,
            scopes=frozenset({"engine"}),
        ),
        Parameter(
            name="min_stacked_snr",
            default=7.0,
            kind=float,
            unit="sigma",
            help="stacked SNR a per-frame or slow-mover track needs to be reported",
            gt=0.0,
            scopes=frozenset({"engine"}),
        ),
        Parameter(
            name="faint_min_stacked_snr",
            default=5.0,
            kind=float,
            unit="sigma",
            help="floor of a faint-search track's stacked SNR (the search's own noise "
            "threshold, run.faint_threshold, is usually higher)",
            gt=0.0,
            scopes=frozenset({"engine"}),
        ),
        Parameter(
            name="memory_gb",
            default=6.0,
            kind=float,
            unit="GB",
            help="memory one search may use; the faint search narrows its rate range to fit, "
            "and a field whose per-frame path does not fit is refused",
            gt=0.0,
            scopes=_ENGINE,
        ),
        Parameter(
            name="pixel_scale",
            default=None,
            kind=float,
            unit="arcsec/px",
            help="pixel scale of frames without a WCS (automatic: the header's SECPIX, "
            "PIXSCALE or XPIXSZ/FOCALLEN); their sky positions are then approximate",
            gt=0.0,
            le=3600.0,
            scopes=_ENGINE,
        ),
        Parameter(
            name="device",
            default="cpu",
            kind=str,
            unit="",
            help="where the array work runs",
            choices=("cpu", "gpu"),
            scopes=_ENGINE,
        ),
        Parameter(
            name="same_night_template",
            default="median",
            kind=str,
            unit="",
            help="without a template from another night: the median of all frames, or per "
            "frame the median of the frames where a mover at --rate-min has left its PSF",
            choices=("median", "exclusion"),
            scopes=_ENGINE,
        ),
        Parameter(
            name="radius_arcmin",
            default=6.0,
            kind=float,
            unit="arcmin",
            help="half-width of the searched field",
            gt=0.0,
            le=60.0,
            scopes=frozenset({"request"}),
        ),
        Parameter(
            name="seed",
            default=0,
            kind=int,
            unit="",
            help="simulated source: which realisation of the field",
            ge=0,
            le=2**31 - 1,
            scopes=frozenset({"request"}),
        ),
    )
}


def default(name: str) -> Any:
    """The default of setting ``name`` (KeyError for an unknown one)."""
    return PARAMETERS[name].default


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """How to search a sequence of frames; each field is the setting of that name.

    See :data:`PARAMETERS` for units, limits and what each does.
    """

    rate_min: float = default("rate_min")
    rate_max: float = default("rate_max")
    threshold: float = default("threshold")
    min_detections: int | None = default("min_detections")
    link_radius: float = default("link_radius")
    min_stacked_snr: float = default("min_stacked_snr")
    faint_min_stacked_snr: float = default("faint_min_stacked_snr")
    memory_gb: float = default("memory_gb")
    device: Device = default("device")  # noqa: RUF009 (a str: immutable)
    faint: bool = default("faint")
    pixel_scale: float | None = default("pixel_scale")
    same_night_template: str = default("same_night_template")

    def __post_init__(self) -> None:
        for f in fields(self):
            PARAMETERS[f.name].check(getattr(self, f.name))
        if not self.rate_min < self.rate_max:
            raise InputError(
                f"rate range {self.rate_min}-{self.rate_max} arcsec/h is empty: rate_min "
                "(--rate-min) must be below rate_max (--rate-max)"
            )

    @classmethod
    def from_options(cls, options: dict[str, Any], **overrides: Any) -> SearchConfig:
        """The engine's settings among ``options`` (a request's parameters), plus overrides."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names}, **overrides)

    def as_dict(self) -> dict:
        """The settings as a JSON-safe dict, for the output's ``run`` block."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
