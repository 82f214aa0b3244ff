"""``local``: the user's own FITS files, read in place from allowed folders.

Only paths under ``ASTROHUNTER_LOCAL_ROOTS`` are read, so a search request
can never make the service read arbitrary files. Frames whose WCS shows
they do not contain the searched position are left out, and named in the
result (the job records each as a ``skipped`` event); frames whose header
cannot be read are passed on for the data service to judge.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from detectors import io
from detectors.errors import InputError
from detectors.headers import celestial_wcs

from ..config import get_settings
from . import FetchProgress, FetchRequest, FetchResult, Source

__all__ = ["LocalSource", "confined_paths", "covers"]

#: Bounds on expanding one pattern: directories visited, files matched, seconds.
MAX_VISITED = 20_000
MAX_MATCHES = 2_000
MAX_EXPAND_S = 5.0


def confined_paths(pattern: str, roots: list[Path]) -> list[Path]:
    """The FITS files a folder, file or glob names, every one inside ``roots``.

    The pattern must be absolute and free of ``..``; its literal start must
    lie in a root, and every match, links resolved, too. The expansion visits
    at most `MAX_VISITED` directories in `MAX_EXPAND_S` seconds, never follows
    a link to a directory, and stops at `MAX_MATCHES` files. Errors name the
    pattern and the roots, never a path found outside them, so a request
    cannot probe the rest of the file system.

    Raises
    ------
    InputError
        ``"path: ..."`` for a pattern outside the roots, too broad, or
        matching no FITS file.
    """
    allowed = ", ".join(map(str, roots))
    parts = Path(pattern).parts
    if not Path(pattern).is_absolute() or ".." in parts:
        raise InputError(
            f"path: give an absolute folder or glob without '..' under the allowed folders "
            f"({allowed})"
        )
    literal = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    try:
        base = Path(*parts[:literal]).resolve()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise InputError(f"path: cannot be read ({exc.strerror})") from None

    def inside(p: Path) -> bool:
        return any(p == root or root in p.parents for root in roots)

    if not inside(base):
        raise InputError(f"path: {pattern} is outside the allowed folders ({allowed})")
    try:
        found = _walk(base, list(parts[literal:]), pattern)
        outside = any(not inside(p.resolve()) for p in found)
    except OSError as exc:
        raise InputError(f"path: cannot be read ({exc.strerror})") from None
    if outside:
        raise InputError(
            f"path: {pattern} reaches outside the allowed folders ({allowed}) through a link"
        )
    try:
        files = io.expand_paths(found) if found else []
    except InputError as exc:
        raise InputError(f"path: {exc}") from None
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise InputError(f"path: cannot be read ({exc.strerror})") from None
    files = [f for f in files if f.name.lower().endswith(io.FITS_SUFFIXES)]
    if not files:
        raise InputError(f"path: {pattern} names no FITS file")
    return files


def _walk(base: Path, parts: list[str], pattern: str) -> list[Path]:
    """Paths under ``base`` matching ``parts`` (``*``, ``?``, ``[...]``, ``**``), bounded."""
    deadline = time.monotonic() + MAX_EXPAND_S
    found: list[Path] = []
    stack = [(base, 0)]
    visited = 0
    while stack:
        folder, i = stack.pop()
        if i == len(parts):
            if folder.exists():
                found.append(folder)
                if len(found) > MAX_MATCHES:
                    raise InputError(f"path: {pattern} names over {MAX_MATCHES} files; narrow it")
            continue
        part = parts[i]
        if not glob.has_magic(part):
            stack.append((folder / part, i + 1))
            continue
        visited += 1
        if visited > MAX_VISITED or time.monotonic() > deadline:
            raise InputError(
                f"path: {pattern} takes too long to expand (over {MAX_VISITED} folders or "
                f"{MAX_EXPAND_S:g} s); narrow it"
            )
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # not a folder, or not readable: no matches there
        for entry in entries:
            hidden = entry.name.startswith(".") and not part.startswith(".")
            is_dir = entry.is_dir(follow_symlinks=False)
            if part == "**":
                if is_dir and not hidden:
                    stack.append((Path(entry.path), i))
            elif not hidden and fnmatch.fnmatchcase(entry.name, part):
                stack.append((Path(entry.path), i + 1))
        if part == "**":
            stack.append((folder, i + 1))
    return sorted(set(found))


def covers(path: Path, ra: float, dec: float) -> bool | None:
    """Whether the first image HDU with a celestial WCS in ``path`` contains (ra, dec).

    Returns
    -------
    bool or None
        None when the file has no readable image WCS (the data service
        will say what is wrong with it).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path) as hdul:
                for hdu in hdul:
                    if not hdu.is_image:
                        continue
                    header = hdu.header
                    shape = [int(header.get(f"NAXIS{i}", 0)) for i in (1, 2)]
                    if int(header.get("NAXIS", 0)) < 2 or min(shape) <= 0:
                        continue
                    wcs = celestial_wcs(header, fobj=hdul)
                    if wcs is None:
                        continue
                    x, y = wcs.all_world2pix([[ra, dec]], 0, quiet=True)[0]
                    width, height = shape
                    return bool(
                        np.isfinite(x)
                        and np.isfinite(y)
                        and -0.5 <= x <= width - 0.5
                        and -0.5 <= y <= height - 0.5
                    )
    except Exception:  # unreadable: not ours to judge
        return None
    return None


class LocalSource(Source):
    name = "local"
    description = "Your own FITS frames from a folder or glob under ASTROHUNTER_LOCAL_ROOTS"
    coverage = "whatever the folder holds (frames not covering the position are skipped)"

    def _paths(self, options: dict) -> list[Path]:
        """The FITS files the path names: inside the allowed roots, found in bounded time."""
        raw = options.get("path")
        if not raw:
            raise InputError("path: the local source needs a folder or glob, e.g. /data/night1")
        roots = [Path(r).resolve() for r in get_settings().local_roots if r]
        if not roots:
            raise InputError("path: the local source is off here (set ASTROHUNTER_LOCAL_ROOTS)")
        return confined_paths(str(raw), roots)

    def _template(self, options: dict) -> list[Path]:
        """The template frames ``template_path`` names, confined like ``path`` (none when unset)."""
        raw = options.get("template_path")
        if not raw:
            return []
        roots = [Path(r).resolve() for r in get_settings().local_roots if r]
        try:
            return confined_paths(str(raw), roots)
        except InputError as err:
            raise InputError("template_" + str(err)) from None

    def validate(self, options: dict) -> None:
        self._paths(options)
        self._template(options)

    def fetch(self, request: FetchRequest, progress: FetchProgress) -> FetchResult:
        paths = self._paths(request.options)
        kept: list[Path] = []
        skipped: list[tuple[str, str]] = []
        where = f"RA {request.ra:.5f} Dec {request.dec:.5f}"
        for i, path in enumerate(paths, start=1):
            if covers(path, request.ra, request.dec) is False:
                skipped.append((path.name, f"does not cover the searched position ({where})"))
            else:
                kept.append(path)
            progress(i, len(paths), f"local: checked {i}/{len(paths)} files")
        if not kept:
            raise InputError(
                f"path: none of the {len(paths)} frames in {request.options['path']} covers "
                f"{where}; check the position or the folder"
            )
        notes = [f"local: {len(kept)} of {len(paths)} files cover {where}"]
        template = self._template(request.options)
        if template:
            notes.append(
                f"local: template of {len(template)} files from {request.options['template_path']}"
            )
        return FetchResult(
            paths=kept, skipped=skipped, notes=notes, source=self.name, template=template
        )
