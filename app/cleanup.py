"""Cleanup: free the data folder of old raw frames without ever touching active jobs.

What goes: a finished (done, failed or cancelled) job's ``raw/`` frames and
``work/`` arrays, when older than ``DATA_RETENTION_DAYS``, or sooner, oldest
first, while free space is below ``MIN_DISK_SPACE_GB``; and download-cache
entries not used for ``DATA_RETENTION_DAYS`` (jobs hold hard links to their
frames, so removing an entry never takes a running job's files). What stays: every
file of a queued or running job, whatever its age; every job's ``results/``
(tracks, MPC report, cutouts) and its database rows, so results stay
readable after their frames are gone; and a ``local`` source's frames, which
are the user's own files outside the data folder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import Settings
from .db import crud
from .db.models import ACTIVE_STATES, Job
from .status import StatusBoard

__all__ = ["Removal", "cleanup_lock", "plan_cleanup", "run_cleanup", "stale_cache_entries"]

#: The folders of a job that cleanup may delete.
REMOVABLE = ("raw", "work")


@dataclass(frozen=True)
class Removal:
    """One job's removable folders, and why they go."""

    job_id: str
    paths: tuple[Path, ...]
    bytes: int
    reason: str


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def stale_cache_entries(settings: Settings, *, now: dt.datetime) -> list[Path]:
    """Download-cache entries (``DATA_DIR/cache/<source>/<key>/``) untouched for the retention time."""
    root = settings.data_dir / "cache"
    cutoff = (now - dt.timedelta(days=settings.data_retention_days)).timestamp()
    if not root.exists():
        return []
    return [
        entry
        for source in root.iterdir()
        if source.is_dir()
        for entry in source.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and entry.stat().st_mtime < cutoff
    ]


def plan_cleanup(
    *, session: Session, settings: Settings, now: dt.datetime, free_bytes: int
) -> list[Removal]:
    """What a cleanup run would remove, oldest first.

    Parameters
    ----------
    session : Session, keyword-only
    settings : Settings, keyword-only
        ``DATA_RETENTION_DAYS``, ``MIN_DISK_SPACE_GB`` and the data folder.
    now : datetime, keyword-only
        The time to measure ages from (UTC).
    free_bytes : int, keyword-only
        Free space on the data folder's disk now.
    """
    finished = session.scalars(
        select(Job)
        .where(Job.state.not_in(ACTIVE_STATES), Job.frames_cleaned.is_(False))
        .order_by(Job.updated_at)
    ).all()
    cutoff = now - dt.timedelta(days=settings.data_retention_days)
    shortfall = int(settings.min_disk_space_gb * 1e9) - free_bytes
    plan = []
    for job in finished:
        paths = tuple(p for p in (settings.job_dir(job.id) / d for d in REMOVABLE) if p.exists())
        size = sum(_size(p) for p in paths)
        if _aware(job.updated_at) < cutoff:
            plan.append(
                Removal(job.id, paths, size, f"older than {settings.data_retention_days} days")
            )
        elif shortfall > 0 and size > 0:
            plan.append(Removal(job.id, paths, size, "free space below MIN_DISK_SPACE_GB"))
        else:
            continue
        shortfall -= size
    return plan


@contextmanager
def cleanup_lock(settings: Settings, board: StatusBoard) -> Iterator[bool]:
    """Hold the one cleanup lock; yields False when another process holds it.

    Redis (when configured) locks across hosts; a file lock in the data
    folder serves one host, and the embedded mode.
    """
    if board.configured and board.ping():
        token = board.acquire("cleanup", ttl_s=3600)
        try:
            yield token is not None
        finally:
            if token is not None:
                board.release("cleanup", token)
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / ".cleanup.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_cleanup(
    *, session: Session, settings: Settings, board: StatusBoard, dry_run: bool = False
) -> list[Removal]:
    """Plan and (unless ``dry_run``) carry out one cleanup; returns what went (or would).

    Every removal is recorded as a job event and the job is marked
    ``frames_cleaned``. An empty list is returned when another cleanup holds
    the lock.
    """
    with cleanup_lock(settings, board) as held:
        if not held:
            return []
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        plan = plan_cleanup(
            session=session,
            settings=settings,
            now=dt.datetime.now(dt.UTC),
            free_bytes=shutil.disk_usage(settings.data_dir).free,
        )
        stale = stale_cache_entries(settings, now=dt.datetime.now(dt.UTC))
        if stale:
            plan.append(
                Removal(
                    "cache",
                    tuple(stale),
                    sum(_size(p) for p in stale),
                    "download cache entries unused for the retention time",
                )
            )
        if dry_run:
            return plan
        for removal in plan:
            if removal.job_id == "cache":
                for path in removal.paths:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            # Re-check under the lock: a job could have been restarted meanwhile.
            job = crud.get_job(session=session, job_id=removal.job_id)
            if job is None or job.state in ACTIVE_STATES:
                continue
            for path in removal.paths:
                shutil.rmtree(path, ignore_errors=True)
            crud.update_job(
                session=session,
                job_id=removal.job_id,
                frames_cleaned=True,
                event=(
                    "cleanup",
                    f"removed frames and work files ({removal.bytes / 1e6:.1f} MB): {removal.reason}",
                ),
            )
        return plan
