"""Many searches at once, each stage served by its own worker service.

A small version of ``benchmarks/reliability_load.py``: searches of tiny
simulated fields submitted together to the API, two worker threads per
stage. Every job must end done, with its own id and its own tracks, each
message handled once: no job lost, none created twice, no track stored twice,
no stage run twice.
"""

from __future__ import annotations

import pytest

from .conftest import field
from .harness import QUEUES, run_load, summary_line

pytestmark = pytest.mark.reliability

JOBS = 20


def test_many_searches_at_once_all_finish_once(deploy):
    d = deploy()
    d.start_api()
    for stage in ("download", "data", "fast_detect", "detailed_detect"):
        d.start_worker(f"worker-{stage}", stage, processes=1, threads=2)
    assert {q: d.consumers(q) for q in QUEUES} == dict.fromkeys(QUEUES, 1)

    run = run_load(d, [field(1.0) for _ in range(JOBS)], timeout=180)
    summary_line(
        f"load: {JOBS} searches, 4 stage services x 2 threads",
        faults=0,
        lost=run.lost,
        duplicates=run.duplicates + run.duplicate_ids + run.extra_jobs,
        stage_reruns=run.stage_reruns,
        jobs_per_min=round(run.done / run.wall_s * 60, 1),
        p50_s=round(run.percentile(50), 2),
        p95_s=round(run.percentile(95), 2),
    )
    assert run.rejected == []
    assert run.lost == 0, {j: s["state"] for j, s in run.final.items() if s["state"] != "done"}
    assert len(set(run.job_ids)) == JOBS and run.extra_jobs == 0
    assert run.duplicates == 0
    assert run.stage_reruns == 0
    for job_id, status in run.final.items():
        assert status["counts"]["tracks"] == len(d.tracks(job_id)), job_id
