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
    """The job could not be handed to the broker (the job is marked failed)."""


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
        except Exception as exc:  # broker unreachable: fail the job rather than leave it hanging
            crud.update_job(
                session=session, job_id=job.id, state="failed", error=f"broker unavailable: {exc}"
            )
            raise
    return job, created
