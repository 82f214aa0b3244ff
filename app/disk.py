"""Free disk space: ``MIN_DISK_SPACE_GB`` is kept free by every writer.

Downloads check it before each file, every stage before it writes, and
``POST /search`` before accepting a search (503 while it holds).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from detectors.errors import InputError

__all__ = ["DiskSpaceError", "check_disk"]


class DiskSpaceError(InputError):
    """Too little free disk space to write (``MIN_DISK_SPACE_GB``)."""


def check_disk(path: Path, min_free_gb: float, *, need_bytes: int = 0) -> None:
    """Refuse to write (a download, a stage's files) when the disk holding ``path`` is nearly full.

    Parameters
    ----------
    path : Path
        Where the files will go (need not exist yet).
    min_free_gb : float
        Free space to keep, in GB (``MIN_DISK_SPACE_GB``).
    need_bytes : int, keyword-only
        Size of the file about to be written, when known.

    Raises
    ------
    DiskSpaceError
        When less than ``min_free_gb`` would remain.
    """
    probe = Path(path).resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free - need_bytes < min_free_gb * 1e9:
        extra = f" after this {need_bytes / 1e9:.2f} GB file" if need_bytes else ""
        raise DiskSpaceError(
            f"not enough free disk space: {free / 1e9:.2f} GB free in {probe}, "
            f"and MIN_DISK_SPACE_GB={min_free_gb:g} must stay free{extra}. Free some space "
            "(astrohunter cleanup removes old jobs' frames) or lower MIN_DISK_SPACE_GB."
        )
