"""Running jobs in the source tests: submit, run the stages as the actors do, read back."""

from __future__ import annotations

import json

import app.actors
from app import pipeline
from app.config import Settings
from app.db import crud
from app.db.base import session_factory
from app.db.models import Job

__all__ = ["STAGES", "job_of", "run_job", "submit", "tracks_of"]


def submit(settings: Settings, *, ra: float, dec: float, source: str, **params) -> str:
    """Create a queued job (as ``POST /search`` would) and return its id."""
    params = {"radius_arcmin": 6.0, "rate_min": 1.0, "rate_max": 150.0, "faint": False, **params}
    with session_factory(settings.db_url)() as session:
        job, _ = crud.create_or_get_job(
            session=session, ra=ra, dec=dec, source=source, params=params, simulated=False
        )
        return job.id


STAGES = (pipeline.download, pipeline.ingest, pipeline.fast, pipeline.detailed)


def run_job(job_id: str, *, stages=STAGES) -> None:
    """Run stages as the actors do (``run_stage``: bad input fails the job)."""
    for stage in stages:
        app.actors.run_stage(job_id, stage, None)


def job_of(settings: Settings, job_id: str) -> Job:
    with session_factory(settings.db_url)() as session:
        job = session.get(Job, job_id)
        _ = job.events  # load while the session is open
        return job


def tracks_of(settings: Settings, job_id: str) -> dict:
    return json.loads((settings.job_dir(job_id) / "results" / "tracks.json").read_text())
