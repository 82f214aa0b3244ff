"""What every survey source does around its own download: cache, disk, progress.

`SurveySource.fetch` is the same for every archive: look in the cache
(a repeated search downloads nothing), check the disk before the first
request, let the survey download into a staging folder through a shared
`Downloader`, commit the folder to the cache, and link the frames into the
job's ``raw/``. A survey module only says what defines its frames
(`SurveySource.cache_parts`) and how to get them (`SurveySource.download`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astropy.time import Time

from detectors.errors import InputError

from ..config import get_settings
from ..disk import check_disk
from . import FetchProgress, FetchRequest, FetchResult, Source
from .cache import Cache, cache_key, link_into
from .http import Downloader

__all__ = ["Delivery", "FileProgress", "SurveySource", "parse_window"]

#: Units of progress per file, so byte-level progress fits ``progress(int, int, str)``.
_UNITS = 1000


@dataclass
class Delivery:
    """What a survey's download produced in the staging folder.

    Attributes
    ----------
    names : list of str
        Frame file names in the staging folder, in time order.
    notes : list of str
        What was chosen (night, sector, cadences) and left out, for job events.
    skipped : list of (str, str)
        Exposures found but not delivered, with the reason.
    meta : dict
        Anything worth keeping in the cache entry (JSON-safe).
    template : list of str
        Template file names in the staging folder (a survey's reference image).
    """

    names: list[str]
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    template: list[str] = field(default_factory=list)


def _parse_time(value: Any, name: str) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return float(value)  # already an MJD
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError as err:
        raise InputError(f"{name}: {value!r} is not an ISO date/time (UTC)") from err
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return float(Time(when, scale="utc").mjd)


def parse_window(options: dict[str, Any]) -> tuple[float | None, float | None]:
    """The search's time window as UTC MJDs (``start``, ``end``; None where open).

    Raises
    ------
    InputError
        ``"start: ..."`` / ``"end: ..."`` for an unreadable time or an empty window.
    """
    start = _parse_time(options.get("start"), "start")
    end = _parse_time(options.get("end"), "end")
    if start is not None and end is not None and end <= start:
        raise InputError("end: the time window ends before it starts")
    return start, end


def window_text(start: float | None, end: float | None) -> str:
    """``" between 2024-04-01T00:00 and ..."`` for messages ('' when open)."""

    def iso(mjd: float) -> str:
        return Time(mjd, format="mjd", scale="utc").isot[:16]

    if start is None and end is None:
        return ""
    if start is None:
        assert end is not None
        return f" before {iso(end)} UTC"
    if end is None:
        return f" after {iso(start)} UTC"
    return f" between {iso(start)} and {iso(end)} UTC"


class FileProgress:
    """Progress of a multi-file download as ``progress(done, total, message)``.

    Each file is worth the same share; within a file, bytes move the bar.
    Messages say files and bytes: ``"ztf: file 3/12, 4.1 MB"``.
    """

    def __init__(self, source: str, progress: FetchProgress, n_files: int) -> None:
        self.source, self.progress, self.n_files = source, progress, max(n_files, 1)
        self.files_done = 0
        self.bytes_done = 0
        self._last_units = -1

    def bytes(self, done: int, total: int | None, *, label: str = "") -> None:
        """A file is arriving: ``done`` of ``total`` bytes (None when unknown)."""
        share = min(done / total, 1.0) if total else 0.0
        units = int((self.files_done + share) * _UNITS)
        if units == self._last_units and total:
            return  # at most one report per 0.1 % of a file
        self._last_units = units
        size = f"{done / 1e6:.1f}" + (f"/{total / 1e6:.1f}" if total else "") + " MB"
        self._send(units, f"file {self.files_done + 1}/{self.n_files}{label}, {size}")

    def file_done(self, nbytes: int, *, label: str = "") -> None:
        """A file is complete (``nbytes`` long)."""
        self.files_done += 1
        self.bytes_done += nbytes
        self._send(
            self.files_done * _UNITS,
            f"{self.files_done}/{self.n_files} files{label}, {self.bytes_done / 1e6:.1f} MB",
        )

    def _send(self, units: int, message: str) -> None:
        self.progress(units, self.n_files * _UNITS, f"{self.source}: {message}")


class _Tracked:
    """A progress callback that remembers where it was, for messages without progress."""

    def __init__(self, progress: FetchProgress) -> None:
        self.progress = progress
        self.last = (0, 1)

    def __call__(self, done: int, total: int, message: str) -> None:
        self.last = (done, total)
        self.progress(done, total, message)

    def note(self, message: str) -> None:
        self.progress(*self.last, message)


class SurveySource(Source):
    """A remote archive: cache first, then disk check, then download into the cache.

    Subclasses set ``name`` (which registers them) and implement
    `cache_parts` and `download`.
    """

    def validate(self, options: dict[str, Any]) -> None:
        parse_window(options)

    def cache_parts(self, request: FetchRequest) -> dict[str, Any]:
        """Everything that decides which frames are delivered (hashed into the cache key).

        The default: position (1e-6 deg), field size (1e-3 arcmin) and the
        time window; surveys add their own options.
        """
        start, end = parse_window(request.options)
        return {
            "ra": round(request.ra, 6),
            "dec": round(request.dec, 6),
            "radius_arcmin": round(request.radius_arcmin, 3),
            "start": None if start is None else round(start, 6),
            "end": None if end is None else round(end, 6),
        }

    def download(
        self, request: FetchRequest, into: Path, http: Downloader, progress: FetchProgress
    ) -> Delivery:
        """Put the frames into the empty folder ``into`` and say what they are."""
        raise NotImplementedError

    def fetch(self, request: FetchRequest, progress: FetchProgress) -> FetchResult:
        """Frames from the cache, or downloaded into it; linked into ``request.dest``.

        Raises
        ------
        InputError
            No usable frames, a 4xx answer, a damaged file, or a full disk
            (`DiskSpaceError`, before any request).
        SourceUnavailable
            The archive could not be reached after every retry.
        """
        settings = get_settings()
        cache = Cache(settings.data_dir / "cache", self.name)
        parts = self.cache_parts(request)
        key = cache_key(source=self.name, **parts)
        entry = cache.lookup(key)
        if entry is not None:
            paths, template = _linked(entry.files, entry.meta.get("template", []), request.dest)
            message = f"{self.name}: {len(paths)} frames from the cache (no download; key {key})"
            progress(len(paths), len(paths), message)
            return FetchResult(
                paths=paths,
                template=template,
                notes=[*entry.meta.get("notes", []), message],
                skipped=[tuple(s) for s in entry.meta.get("skipped", [])],
                source=self.name,
                cache_key=key,
                cache_hit=True,
            )
        check_disk(settings.data_dir, settings.min_disk_space_gb)
        tracked = _Tracked(progress)
        tracked(0, 1, f"{self.name}: not in the cache, downloading")
        with (
            cache.staging(key) as staging,
            Downloader.from_settings(self.name, settings, report=tracked.note) as http,
        ):
            delivery = self.download(request, staging, http, tracked)
            if not delivery.names:
                raise InputError(f"{self.name}: no frames were delivered")
            entry = cache.commit(
                key,
                staging,
                [*delivery.names, *delivery.template],
                {
                    "source": self.name,
                    "parts": parts,
                    "notes": delivery.notes,
                    "skipped": delivery.skipped,
                    "template": delivery.template,
                    **delivery.meta,
                },
            )
        paths, template = _linked(entry.files, delivery.template, request.dest)
        return FetchResult(
            paths=paths,
            template=template,
            notes=[*delivery.notes, f"{self.name}: {len(paths)} frames cached (key {key})"],
            skipped=delivery.skipped,
            source=self.name,
            cache_key=key,
        )


def _linked(files: list[Path], template: list[str], dest: Path) -> tuple[list[Path], list[Path]]:
    """Frames linked into ``dest``, template files into ``dest/template/``."""
    names = set(template)
    frames = link_into([f for f in files if f.name not in names], dest)
    return frames, link_into([f for f in files if f.name in names], dest / "template")
