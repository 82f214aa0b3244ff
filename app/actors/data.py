"""Data service: read and validate the frames, register files and FITS metadata."""

from __future__ import annotations

import dramatiq

from .. import pipeline
from . import ACTOR_OPTIONS, run_stage
from .fast_detect import fast_detect


@dramatiq.actor(queue_name="data", **ACTOR_OPTIONS)
def ingest(job_id: str) -> None:
    run_stage(job_id, pipeline.ingest, fast_detect)
