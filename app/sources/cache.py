"""Downloaded frames kept for the next identical search.

An entry is a folder ``DATA_DIR/cache/<source>/<key>/`` holding the frames
and a ``entry.json`` naming them; the key is a hash of everything that
decides which frames a source delivers (position, size, time window, ...).
An entry is built in a temporary folder beside it and renamed into place
only when complete, so a crash or a failed download never leaves a
half-filled entry that a later search would trust. A job's ``raw/`` gets
hard links to the cached files (a copy where links are impossible), so
cleanup of a job never touches the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Cache", "CacheEntry", "cache_key", "link_into"]

_MANIFEST = "entry.json"


def cache_key(**parts: Any) -> str:
    """A short stable hash of ``parts`` (JSON-serialisable values; floats as given)."""
    canonical = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class CacheEntry:
    """A complete cache entry.

    Attributes
    ----------
    path : Path
        The entry's folder.
    files : list of Path
        Its files, in the order they were committed.
    meta : dict
        What the source recorded with them (``parts`` that made the key, notes).
    """

    path: Path
    files: list[Path]
    meta: dict[str, Any]


class Cache:
    """One source's cache folder, ``root/<source>/``."""

    def __init__(self, root: Path, source: str) -> None:
        self.dir = Path(root) / source

    def lookup(self, key: str) -> CacheEntry | None:
        """The complete entry for ``key``, or None (absent, unfinished or files gone)."""
        folder = self.dir / key
        try:
            meta = json.loads((folder / _MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        files = [folder / name for name in meta.get("files", [])]
        if not all(f.is_file() for f in files):
            return None
        os.utime(folder)  # last use: cleanup removes entries unused for the retention time
        return CacheEntry(folder, files, meta)

    @contextlib.contextmanager
    def staging(self, key: str) -> Iterator[Path]:
        """A private folder to build entry ``key`` in; removed unless committed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".partial", dir=self.dir))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def commit(
        self, key: str, staging: Path, names: Sequence[str], meta: dict[str, Any]
    ) -> CacheEntry:
        """Make ``staging`` (holding ``names``) the entry for ``key``, atomically.

        When another job committed the same key meanwhile, its entry is kept
        and ours discarded (they hold the same frames).
        """
        manifest = {**meta, "files": list(names)}
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n")
        final = self.dir / key
        if final.exists() and self.lookup(key) is None:
            shutil.rmtree(final, ignore_errors=True)  # a broken leftover
        with contextlib.suppress(OSError):  # already there: someone else won the race
            os.rename(staging, final)
        entry = self.lookup(key)
        if entry is None:
            raise OSError(f"cache entry {final} could not be created")
        return entry


def link_into(files: Sequence[Path], dest: Path) -> list[Path]:
    """Hard-link (or copy, across file systems) ``files`` into folder ``dest``.

    Returns
    -------
    list of Path
        The new paths, in the order of ``files``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for src in files:
        target = dest / src.name
        target.unlink(missing_ok=True)
        try:
            os.link(src, target)
        except OSError:
            shutil.copy2(src, target)
        out.append(target)
    return out
