"""A worker killed (SIGKILL) in the middle of a detection stage.

RabbitMQ gives the unacknowledged message back when the worker's connection
dies, and a new worker runs the stage again from what the database and the
data folder hold. Each job must finish with exactly the tracks of a clean
run of the same search: nothing lost, nothing stored twice.
"""

from __future__ import annotations

import pytest

from .conftest import field
from .harness import summary_line

pytestmark = pytest.mark.reliability

#: A search per stage, slow enough there to be killed mid-stage: the faint
#: (shift-and-stack) search makes fast_detect take ~5-10 s; a 2000 px field's
#: ~70 objects make detailed_detect fit and draw ~70 tracks (~3 s).
SLOW_IN = {
    "fast_detect": lambda: field(3.0, faint=True),
    "detailed_detect": lambda: field(20.0, faint=False),
}
#: Kill while the stage's percent is below this: well before its end.
KILL_BELOW = {"fast_detect": 60.0, "detailed_detect": 100.0}


def test_worker_killed_mid_stage_redelivers_without_duplicates(deploy):
    d = deploy()
    d.start_api()
    d.start_worker(threads=2)
    bodies = {stage: make() for stage, make in SLOW_IN.items()}

    # The clean runs, for comparison.
    clean = {stage: d.submit(body) for stage, body in bodies.items()}
    final = d.wait_final(clean.values(), timeout=150)
    assert {s["state"] for s in final.values()} == {"done"}, f"{final}\n{d.logs()}"

    # The same searches again (a new job each, the first ones being finished),
    # and the worker killed once in the middle of each one's slow stage.
    runs = {stage: d.submit(body) for stage, body in bodies.items()}
    assert set(runs.values()).isdisjoint(clean.values())
    faults = 0
    for stage, job_id in runs.items():
        d.wait_status(
            job_id,
            lambda s, stage=stage: s["state"] == stage and s["percent"] < KILL_BELOW[stage],
            timeout=120,
            interval=0.02,
            what=f"{stage} under way",
        )
        d.kill("worker")
        faults += 1
        job = d.db_job(job_id)
        assert job.state == stage, f"the kill missed {stage}: the job is already {job.state}"
        assert not any(m.startswith(f"{stage} done") for _, m in d.events(job_id))
        d.start_worker(threads=2)

    final = d.wait_final(runs.values(), timeout=180)
    lost = sum(1 for s in final.values() if s["state"] != "done")
    duplicates = sum(d.duplicates(j) for j in [*runs.values(), *clean.values()])
    reruns = {stage: d.stage_runs(runs[stage])[stage] for stage in runs}
    summary_line(
        "worker SIGKILL mid-stage",
        faults=faults,
        lost=lost,
        duplicates=duplicates,
        stage_runs=reruns,
    )
    assert lost == 0, f"{final}\n{d.logs()}"
    assert duplicates == 0
    for stage, job_id in runs.items():
        # Redelivered: the killed stage ran again, and gave what the clean run gave.
        assert reruns[stage] >= 2, (stage, d.events(job_id))
        assert d.tracks(job_id) == d.tracks(clean[stage]), stage
        # The work file's size is a measurement (its metadata holds the run's timings).
        assert _results(final[job_id]["counts"]) == _results(d.db_job(clean[stage]).counts)
        contract = d.http.get(f"/jobs/{job_id}/tracks").raise_for_status().json()
        assert len(contract["tracks"]) == len(d.tracks(clean[stage])) > 0


def _results(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k != "work_file_bytes"}
