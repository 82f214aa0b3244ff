"""Where a search's frames come from: one module per source, one interface.

A source turns a search (position, radius, time window, options) into FITS
files on disk in a job's ``raw/`` folder, reporting progress as it goes.
Sources register by name; ``GET /sources`` lists them and ``POST /search``
validates ``source`` against them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["SOURCES", "FetchRequest", "Source", "get_source"]

#: ``progress(done, total, message)``.
FetchProgress = Callable[[int, int, str], None]


@dataclass(frozen=True, kw_only=True)
class FetchRequest:
    """What a source is asked for."""

    ra: float
    dec: float
    radius_arcmin: float
    dest: Path
    options: dict[str, Any] = field(default_factory=dict)


class Source:
    """A provider of frames. Subclasses set ``name`` and implement :meth:`fetch`."""

    name: ClassVar[str]
    simulated: ClassVar[bool] = False
    description: ClassVar[str] = ""
    coverage: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        SOURCES[cls.name] = cls

    def validate(self, options: dict[str, Any]) -> None:
        """Raise ``InputError`` for options this source cannot serve (before queuing)."""

    def fetch(self, request: FetchRequest, progress: FetchProgress) -> list[Path]:
        """Put the frames in ``request.dest`` (or name files in place) and return their paths."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
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
from . import local, simulated  # noqa: E402, F401
