"""Handing a job to the broker: bounded in time, and never lost between database and broker.

A search is saved first, then its first message is sent. Two things can go
wrong in between, and both are handled here:

- the broker does not answer, or answers slowly (down, or blocked by a
  RabbitMQ resource alarm): `Dispatcher` waits at most ``publish_timeout_s``
  and lets only a few sends wait at once, so a blocked broker costs a POST a
  few seconds and a 503, and never the threads that serve reads;
- the API dies after saving and before the broker confirmed the message: the
  job stays ``queued`` with no ``dispatched_at``. Its dispatch lease lapses,
  and `resend_orphans` - run at API start and every few seconds, and by the
  cleanup service - sends it again. A lease taken with a conditional UPDATE
  lets only one process send a given job.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .db.models import Job

__all__ = ["BrokerUnavailable", "Dispatcher", "claim", "mark_sent", "resend_orphans"]

log = logging.getLogger(__name__)

#: Sends that may wait on the broker at once.
MAX_PENDING_SENDS = 8
#: How long one more send waits for a free slot before its POST answers 503: long
#: enough for a burst of searches while the send threads open their connections,
#: short enough that a blocked broker does not hold the threads that serve reads.
SLOT_WAIT_S = 1.0


class BrokerUnavailable(RuntimeError):
    """The broker did not take a job's message (down, blocked, or too slow)."""


class Dispatcher:
    """``dispatcher(job_id)``: send a job's first message, or raise `BrokerUnavailable` in time.

    Parameters
    ----------
    send : callable
        ``send(job_id)`` publishes the message (the downloader actor's
        ``send``); it may block while the broker is blocked.
    timeout_s : float, keyword-only
        Longest wait for the broker's confirmation.
    """

    def __init__(self, send: Callable[[str], object], *, timeout_s: float) -> None:
        self._send, self._timeout = send, timeout_s
        self._slots = threading.BoundedSemaphore(MAX_PENDING_SENDS)
        self._pool = ThreadPoolExecutor(MAX_PENDING_SENDS, thread_name_prefix="astrohunter-send")

    def __call__(self, job_id: str) -> None:
        if not self._slots.acquire(timeout=min(SLOT_WAIT_S, self._timeout)):
            raise BrokerUnavailable(
                f"broker blocked: {MAX_PENDING_SENDS} messages are still waiting for it "
                "(a RabbitMQ resource alarm?); try again later"
            )
        future = self._pool.submit(self._send, job_id)
        future.add_done_callback(lambda _: self._slots.release())
        try:
            future.result(timeout=self._timeout)
        except FutureTimeout:
            raise BrokerUnavailable(
                f"broker did not confirm the message within {self._timeout:g} s (blocked by a "
                "RabbitMQ resource alarm, or overloaded); try again later"
            ) from None
        except Exception as exc:  # whatever the broker client raised: not sent
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}: {exc}") from exc


def _now() -> float:
    return time.time()


def claim(*, session: Session, job_id: str, hold_s: float) -> bool:
    """Take the right to send a queued, unsent job for ``hold_s`` seconds (one process wins)."""
    now = _now()
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.state == "queued",
            Job.dispatched_at.is_(None),
            or_(Job.dispatch_lease.is_(None), Job.dispatch_lease < now),
        )
        .values(dispatch_lease=now + hold_s)
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0) == 1)


def mark_sent(*, session: Session, job_id: str) -> None:
    """Record that the broker confirmed the job's first message."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(dispatched_at=dt.datetime.now(dt.UTC), dispatch_lease=None)
    )
    session.commit()


def resend_orphans(
    *, session: Session, dispatch: Callable[[str], None], hold_s: float
) -> list[str]:
    """Send every queued job whose first message was never confirmed and whose lease lapsed.

    Returns the ids sent. A job the broker still refuses keeps its lease and is
    tried again when it lapses.
    """
    now = _now()
    waiting = session.scalars(
        select(Job.id).where(
            Job.state == "queued",
            Job.dispatched_at.is_(None),
            or_(Job.dispatch_lease.is_(None), Job.dispatch_lease < now),
        )
    ).all()
    sent = []
    for job_id in waiting:
        if not claim(session=session, job_id=job_id, hold_s=hold_s):
            continue  # another process took it
        try:
            dispatch(job_id)
        except BrokerUnavailable as exc:
            log.warning("job %s still not sent: %s", job_id, exc)
            continue
        mark_sent(session=session, job_id=job_id)
        log.info("job %s: its first message was lost; sent again", job_id)
        sent.append(job_id)
    return sent
