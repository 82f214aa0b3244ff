"""Downloader service: fetch a job's frames from its source."""

from __future__ import annotations

import dramatiq

from .. import pipeline
from . import ACTOR_OPTIONS, run_stage
from .data import ingest


@dramatiq.actor(queue_name="download", **ACTOR_OPTIONS)
def download(job_id: str) -> None:
    run_stage(job_id, pipeline.download, ingest)
