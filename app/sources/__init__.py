"""Where a search's frames come from: one module per source, one interface.

A source turns a search (position, radius, time window, options) into FITS
files on disk in a job's ``raw/`` folder, reporting progress as it goes.
Sources register by name; ``GET /sources`` lists them and ``POST /search``
validates ``source`` against them.

Sources: ``local`` (the user's own frames), ``simulated`` (the offline
default), ``ztf`` (ZTF science-image cutouts from IRSA), ``tess`` (TESS
full-frame-image cutouts from MAST TESScut) and ``auto`` (the first survey
that can serve the position and time window). The surveys share
``http.py`` (timeouts, retries, atomic downloads, FITS validation) and
``cache.py`` (downloads kept under ``DATA_DIR/cache/<source>/<key>/``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, overload

__all__ = ["SOURCES", "FetchProgress", "FetchRequest", "FetchResult", "Source", "get_source"]

#: ``progress(done, total, message)``.
FetchProgress = Callable[[int, int, str], None]


@dataclass(frozen=True, kw_only=True)
class FetchRequest:
    """What a source is asked for.

    Attributes
    ----------
    ra, dec : float
        Field centre, degrees (ICRS).
    radius_arcmin : float
        Half-width of the field, arcminutes.
    dest : Path
        The job's ``raw/`` folder.
    options : dict
        The search's parameters (``SearchRequest.params()``): ``start`` and
        ``end`` (ISO UTC), ``path``, ``seed``, ...; sources ignore what they
        do not use.
    """

    ra: float
    dec: float
    radius_arcmin: float
    dest: Path
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class FetchResult(Sequence[Path]):
    """The frames a source delivered, and what it left out.

    It behaves as the sequence of paths, so code that only wants the files
    can ignore the rest.

    Attributes
    ----------
    paths : list of Path
        The frames, in time order where the source knows it.
    skipped : list of (str, str)
        ``(name, reason)`` of frames found but not delivered (e.g. a local
        file that does not cover the position); the pipeline records each as
        a job event.
    notes : list of str
        What the source chose or did (sector, night, cache hit, ...), also
        recorded as job events.
    source : str
        The source that delivered (``auto`` names the survey it used).
    cache_key : str or None
        The cache entry the frames came from or went to.
    cache_hit : bool
        True when nothing was downloaded.
    template : list of Path
        Frames of the field from another night (or a survey's reference
        image) to subtract instead of the night's own median; empty when none.
    """

    paths: list[Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""
    cache_key: str | None = None
    cache_hit: bool = False
    template: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> list[Path]: ...
    def __getitem__(self, index: int | slice) -> Path | list[Path]:
        return self.paths[index]

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)


class Source:
    """A provider of frames. Subclasses set ``name`` and implement :meth:`fetch`.

    A class that sets ``name`` registers itself; a shared base without one
    (``survey.SurveySource``) does not.
    """

    name: ClassVar[str]
    simulated: ClassVar[bool] = False
    description: ClassVar[str] = ""
    coverage: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            SOURCES[cls.name] = cls

    def validate(self, options: dict[str, Any]) -> None:
        """Raise ``InputError`` for options this source cannot serve (before queuing)."""

    def fetch(self, request: FetchRequest, progress: FetchProgress) -> FetchResult:
        """Put the frames in ``request.dest`` (or name files in place) and return them."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name, whether simulated, what it is and what it covers (sky, dates)."""
        return {
            "name": self.name,
            "simulated": self.simulated,
            "description": self.description,
            "coverage": self.coverage,
        }


SOURCES: dict[str, type[Source]] = {}


def get_source(name: str) -> Source:
    """The source registered as ``name`` (KeyError when there is none)."""
    return SOURCES[name]()


# Each source module registers itself on import.
from . import auto, local, simulated, tess, ztf  # noqa: E402, F401
