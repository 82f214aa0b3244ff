"""Detailed detector service (CPU): verify, measure and store the tracks."""

from __future__ import annotations

import dramatiq

from .. import pipeline
from . import ACTOR_OPTIONS, run_stage


@dramatiq.actor(queue_name="detailed_detect", **ACTOR_OPTIONS)
def detailed_detect(job_id: str) -> None:
    run_stage(job_id, pipeline.detailed, None)
