"""Redis down, and the API process killed, while a job runs.

Redis holds only live progress; the database is the record. With Redis
down, ``/status`` answers from the database (``live`` false) with the state
the database holds, and live progress comes back with Redis. The API holds
no job state at all: killed and started again, it reports the running job
correctly, and the workers finish it meanwhile.
"""

from __future__ import annotations

import time

import pytest

from app.db.models import STATES

from .conftest import field
from .harness import ACTIVE, redis_stopped, start_redis, summary_line

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def stack(deploy_module):
    """API and one ``worker all`` (2 threads), shared by this module's tests."""
    d = deploy_module("outages")
    d.start_api()
    d.start_worker(threads=2)
    return d


def _status_against_database(d, job_id: str) -> dict:
    """``/status`` read between two database reads, and checked against them.

    From the database (``live`` false), state and percent are the ones it
    held; from Redis, the state is the database's or, for the instant
    between a stage's two writes, the one before it.
    """
    before = d.db_job(job_id)
    status = d.status(job_id)
    after = d.db_job(job_id)
    if status["live"]:
        lo, hi = STATES.index(before.state) - 1, STATES.index(after.state)
        assert lo <= STATES.index(status["state"]) <= hi, (status, before.state, after.state)
    else:
        assert status["state"] in (before.state, after.state), (status, before.state, after.state)
        assert before.percent <= status["percent"] <= after.percent, status
    return status


def test_redis_down_status_from_database_then_live_again(stack):
    d = stack
    with redis_stopped():
        health = d.http.get("/health").json()
        assert health["checks"]["redis"]["ok"] is False, health
        # Searches are accepted and run with Redis down; /status follows them from the
        # database through their stages.
        # The simulator's largest field (2048^2 x 8) with the faint search: fast_detect
        # (12-15 s here) outlasts Redis's restart plus the 5 s the status board waits
        # before it tries a Redis that was down (a 1000^2 field ended before that).
        job_id = d.submit(field(20.5, faint=True))
        other = d.submit(field(1.0))
        states = []
        deadline = time.monotonic() + 60
        while not states or states[-1] != "fast_detect":
            status = _status_against_database(d, job_id)
            assert status["live"] is False, status
            assert status["state"] in ACTIVE, status
            if not states or states[-1] != status["state"]:
                states.append(status["state"])
            assert time.monotonic() < deadline, f"states seen with Redis down: {states}"
            d.check_alive()
            time.sleep(0.05)
        assert len(states) >= 2, states

        start_redis()
        status = d.wait_status(
            job_id, lambda s: s["live"], timeout=30, what="live status after Redis came back"
        )
        assert status["state"] in ("fast_detect", "detailed_detect"), status

    final = d.wait_final([job_id, other], timeout=120)
    lost = sum(1 for s in final.values() if s["state"] != "done")
    duplicates = d.duplicates(job_id) + d.duplicates(other)
    summary_line(
        "Redis down mid-job", faults=1, lost=lost, duplicates=duplicates, states_seen=states
    )
    assert lost == 0, f"{final}\n{d.logs()}"
    assert duplicates == 0
    assert final[job_id]["live"] is False and final[job_id]["percent"] == 100.0


def test_api_killed_and_restarted_mid_job(stack):
    d = stack
    job_id = d.submit(field(7.0, faint=True))  # faint search: ~6 s in fast_detect
    d.wait_status(
        job_id, lambda s: s["state"] in ("fast_detect", "detailed_detect"), what="detection"
    )
    d.kill("api")
    killed = d.db_job(job_id)
    # The workers go on without the API.
    deadline = time.monotonic() + 60
    while (now := d.db_job(job_id)).state == killed.state and now.percent == killed.percent:
        assert time.monotonic() < deadline, f"no progress without the API: {now.state}"
        time.sleep(0.1)

    d.start_api()
    status = _status_against_database(d, job_id)
    assert status["state"] in (*ACTIVE, "done"), status
    if status["state"] in ACTIVE:
        assert status["live"] is True, status
    final = d.wait_final([job_id], timeout=120)[job_id]
    listed = [j["job_id"] for j in d.http.get("/jobs").json()["jobs"]]
    lost = int(final["state"] != "done")
    duplicates = d.duplicates(job_id) + listed.count(job_id) - 1
    summary_line("API SIGKILL and restart mid-job", faults=1, lost=lost, duplicates=duplicates)
    assert lost == 0, f"{final}\n{d.logs()}"
    assert duplicates == 0
    assert final["counts"]["tracks"] == len(d.tracks(job_id)) > 0
    assert d.http.get(f"/jobs/{job_id}/report.mpc").status_code == 200
