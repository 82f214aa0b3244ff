"""The cleanup service: APScheduler runs ``cleanup.run_cleanup`` on a schedule.

Retention runs every ``CLEANUP_SCHEDULE_HOURS``; the free-space check runs
every few minutes, since a disk fills faster than a day. Several cleanup
processes may run (one per host); the lock in ``run_cleanup`` lets only one
act at a time.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.blocking import BlockingScheduler

from .cleanup import run_cleanup
from .config import Settings
from .db.base import session_factory
from .status import StatusBoard

__all__ = ["DISK_CHECK_MINUTES", "cleanup_once", "run_scheduler"]

log = logging.getLogger(__name__)
DISK_CHECK_MINUTES = 5


def cleanup_once(settings: Settings, *, dry_run: bool = False) -> list:
    """One cleanup pass (what ``astrohunter cleanup --once`` runs)."""
    with session_factory(settings.db_url)() as session:
        removals = run_cleanup(
            session=session, settings=settings, board=StatusBoard(settings), dry_run=dry_run
        )
    for r in removals:
        log.info(
            "%s job %s: %.1f MB (%s)",
            "would remove" if dry_run else "removed",
            r.job_id,
            r.bytes / 1e6,
            r.reason,
        )
    return removals


def run_scheduler(settings: Settings) -> None:
    """Run cleanup on its schedule until interrupted."""
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(
        cleanup_once, "interval", hours=settings.cleanup_schedule_hours, args=[settings], id="retention",
        max_instances=1, coalesce=True,
    )  # fmt: skip
    scheduler.add_job(
        cleanup_once, "interval", minutes=DISK_CHECK_MINUTES, args=[settings], id="disk",
        max_instances=1, coalesce=True,
    )  # fmt: skip
    log.info(
        "cleanup every %s h, free-space check every %s min",
        settings.cleanup_schedule_hours,
        DISK_CHECK_MINUTES,
    )
    cleanup_once(settings)
    scheduler.start()
