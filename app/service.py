"""Submitting a search: shared by ``POST /search`` and every client of it.

The job is saved, then its first message is sent through a `Dispatcher`
(bounded in time); a job the broker refuses is removed, so a refused search
leaves nothing behind. A repeat of a search that is running returns that
job - and if that job was saved but never sent (its API died in between),
the repeat sends it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from detectors.errors import InputError

from .config import Settings
from .db import crud
from .db.models import Job
from .disk import check_disk
from .dispatch import BrokerUnavailable, Dispatcher, claim, mark_sent
from .schemas import SearchRequest
from .sources import SOURCES, get_source
from .status import StatusBoard

__all__ = ["BrokerUnavailable", "submit_search"]


def submit_search(
    body: SearchRequest,
    *,
    session: Session,
    settings: Settings,
    board: StatusBoard,
    dispatch: Dispatcher,
) -> tuple[Job, bool]:
    """Queue a search, or return the identical one already running.

    Returns
    -------
    job, created : Job, bool

    Raises
    ------
    InputError
        ``"field: message"`` for an unknown source or options it refuses.
    DiskSpaceError
        Free space is below ``MIN_DISK_SPACE_GB`` (checked before the
        source's options, so it is not taken for a bad request).
    BrokerUnavailable
        The broker did not take the message; a new job was not kept.
    """
    if body.source not in SOURCES:
        raise InputError(
            f"source: unknown source {body.source!r}; known: {', '.join(sorted(SOURCES))}"
        )
    check_disk(settings.data_dir, settings.min_disk_space_gb)
    source = get_source(body.source)
    source.validate(body.params())
    job, created = crud.create_or_get_job(
        session=session,
        ra=body.ra,
        dec=body.dec,
        source=body.source,
        params=body.params(),
        simulated=source.simulated,
        hold_s=settings.redispatch_after_s,
    )
    orphan = (
        not created
        and job.state == "queued"
        and job.dispatched_at is None
        and claim(session=session, job_id=job.id, hold_s=settings.redispatch_after_s)
    )
    if created or orphan:
        try:
            dispatch(job.id)
        except BrokerUnavailable:
            if created:  # refused, not failed: it never existed for the user
                crud.delete_job(session=session, job_id=job.id)
            raise
        mark_sent(session=session, job_id=job.id)
        board.set(job.id, state="queued", percent=0.0, message="")
        session.refresh(job)
    return job, created
