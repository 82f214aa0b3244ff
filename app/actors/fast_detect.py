"""Fast detector service: image differencing and linking (CuPy on a GPU, else NumPy)."""

from __future__ import annotations

import dramatiq

from .. import pipeline
from . import ACTOR_OPTIONS, run_stage
from .detailed_detect import detailed_detect


@dramatiq.actor(queue_name="fast_detect", **ACTOR_OPTIONS)
def fast_detect(job_id: str) -> None:
    run_stage(job_id, pipeline.fast, detailed_detect)
