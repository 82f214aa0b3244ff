"""``local``: the user's own FITS files, read in place from allowed folders.

Only paths under ``ASTROHUNTER_LOCAL_ROOTS`` are read, so a search request
can never make the service read arbitrary files.
"""

from __future__ import annotations

from pathlib import Path

from detectors import io
from detectors.errors import InputError

from ..config import get_settings
from . import FetchProgress, FetchRequest, Source

__all__ = ["LocalSource"]


class LocalSource(Source):
    name = "local"
    description = "Your own FITS frames from a folder or glob under ASTROHUNTER_LOCAL_ROOTS"
    coverage = "whatever the folder holds"

    def _resolve(self, options: dict) -> Path:
        raw = options.get("path")
        if not raw:
            raise InputError("path: the local source needs a folder or glob, e.g. /data/night1")
        roots = [Path(r).resolve() for r in get_settings().local_roots if r]
        target = Path(str(raw).split("*")[0] or ".").resolve()
        if not any(target == root or root in target.parents for root in roots):
            allowed = ", ".join(map(str, roots)) or "none (set ASTROHUNTER_LOCAL_ROOTS)"
            raise InputError(f"path: {raw} is outside the allowed folders ({allowed})")
        return target

    def validate(self, options: dict) -> None:
        self._resolve(options)

    def fetch(self, request: FetchRequest, progress: FetchProgress) -> list[Path]:
        self._resolve(request.options)
        paths = io.expand_paths([str(request.options["path"])])
        progress(len(paths), len(paths), f"{len(paths)} local files")
        return paths
