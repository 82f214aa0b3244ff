"""Submitting a search: shared by ``POST /search`` and ``astrohunter search``."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from detectors.errors import InputError

from .db import crud
from .db.models import Job
from .schemas import SearchRequest
from .sources import SOURCES, get_source
from .status import StatusBoard

__all__ = ["BrokerUnavailable", "submit_search"]


class BrokerUnavailable(RuntimeError):
    """The job could not be handed to the broker; nothing was kept of it."""


def submit_search(
    body: SearchRequest,
    *,
    session: Session,
    board: StatusBoard,
    dispatch: Callable[[str], None],
) -> tuple[Job, bool]:
    """Queue a search, or return the identical one already running.

    Raises
    ------
    InputError
        ``"field: message"`` for an unknown source or options it refuses.
    BrokerUnavailable
        The broker did not take the message; the job was not kept.
    """
    if body.source not in SOURCES:
        raise InputError(
            f"source: unknown source {body.source!r}; known: {', '.join(sorted(SOURCES))}"
        )
    source = get_source(body.source)
    source.validate(body.params())
    job, created = crud.create_or_get_job(
        session=session,
        ra=body.ra,
        dec=body.dec,
        source=body.source,
        params=body.params(),
        simulated=source.simulated,
    )
    if created:
        board.set(job.id, state="queued", percent=0.0, message="")
        try:
            dispatch(job.id)
        except Exception as exc:  # whatever the broker client raised: the message is not sent
            # Refused, not failed: the job never existed for the user, so it
            # must not sit in the job list (nor block a repeat of the search).
            crud.delete_job(session=session, job_id=job.id)
            board.forget(job.id)
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}: {exc}") from exc
    return job, created
