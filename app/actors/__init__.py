"""Dramatiq actors, one module per service, each a thin layer over ``app.pipeline``.

``run_stage`` is what every actor does: run its pipeline stage for a job
and hand the job to the next queue. Bad data (``InputError``) fails the job
at once with its message; so does a stage delivered too often without
finishing (`pipeline.GiveUp`: its worker died each time). Other errors are
retried with backoff by Dramatiq, and fail the job when the retries run out.
Messages carry only the job id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from detectors.errors import InputError

from .. import pipeline
from ..broker import broker
from ..config import get_settings

__all__ = ["ACTOR_OPTIONS", "broker", "context", "run_stage"]

log = logging.getLogger(__name__)

#: Retries and limits shared by the stage actors (milliseconds).
ACTOR_OPTIONS: dict[str, Any] = {
    "max_retries": 3,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "time_limit": 3_600_000,
}

_context: pipeline.Context | None = None


def context() -> pipeline.Context:
    """The worker process's pipeline context (made on first use)."""
    global _context
    if _context is None:
        _context = pipeline.Context(get_settings())
    return _context


def run_stage(
    job_id: str, stage: Callable[[pipeline.Context, str], None], then: dramatiq.Actor | None
) -> None:
    """Run one stage for ``job_id`` and send the job on to ``then``."""
    ctx = context()
    try:
        stage(ctx, job_id)
    except pipeline.Cancelled as exc:
        log.info("%s", exc)
        return
    except (InputError, pipeline.GiveUp) as exc:
        pipeline.fail(ctx, job_id, str(exc))
        return
    except Exception as exc:
        message = CurrentMessage.get_current_message()
        retries = message.options.get("retries", 0) if message else 0
        if retries >= ACTOR_OPTIONS["max_retries"]:
            pipeline.fail(ctx, job_id, f"{type(exc).__name__}: {exc} (after {retries} retries)")
            return
        raise
    if then is not None:
        then.send(job_id)
