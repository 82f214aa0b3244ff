"""RabbitMQ stopped and started again, with jobs waiting in its queues or being worked.

Searches are accepted with no worker running, so their messages wait in the
``download`` queue; then RabbitMQ's broker is stopped (``rabbitmqctl
stop_app``). The API must keep answering, report the broker down in
``/health``, and refuse a new search with a 503 that leaves no job hanging in
``queued``. Once the broker is back, its durable queue still holds every
waiting message, the API sends again, and workers finish every job.

With a worker in the middle of a stage, the broker's restart gives the
message back while the worker still runs it: the stage runs twice at once,
and the job must still finish once, with its tracks stored once.
"""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app import pipeline
from app.api.main import create_app

from ..app.conftest import queue_state
from .conftest import field
from .harness import rabbitmq_stopped, summary_line

pytestmark = pytest.mark.reliability

WAITING = 4


def _health_once_probed(d, code: int, timeout: float = 20.0):
    """``/health`` once the API's background probe (every few seconds) saw the change."""
    deadline = time.monotonic() + timeout
    while (health := d.http.get("/health")).status_code != code:
        assert time.monotonic() < deadline, health.text
        time.sleep(0.2)
    return health


def test_queued_jobs_survive_a_broker_restart(deploy):
    d = deploy()
    d.start_api()
    waiting = [d.submit(field(1.0)) for _ in range(WAITING)]
    assert {d.status(j)["state"] for j in waiting} == {"queued"}
    assert queue_state("download", vhost=d.vhost) == (WAITING, 0)

    refused_body = field(1.0)
    with rabbitmq_stopped():
        health = _health_once_probed(d, 503)
        checks = health.json()["checks"]
        assert checks["broker"]["ok"] is False, checks
        assert checks["redis"]["ok"] and checks["database"]["ok"], checks

        # Reads come from the database and Redis: no broker needed.
        for job_id in waiting:
            assert d.status(job_id)["state"] == "queued"
        listing = d.http.get("/jobs")
        assert listing.status_code == 200, listing.text
        assert listing.json()["total"] == WAITING

        # A new search is refused at once, and its job does not hang in 'queued'.
        started = time.monotonic()
        refused = d.http.post("/search", json=refused_body, timeout=30)
        seconds = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert refused.json()["detail"].startswith("broker ")
        assert seconds < 15, f"POST /search took {seconds:.1f} s with the broker down"
        queued = d.http.get("/jobs", params={"state": "queued"}).json()
        assert queued["total"] == WAITING, queued
        assert d.http.get("/jobs").json()["total"] == WAITING  # the refused job left no trace
        d.check_alive()

    # The broker is back: the API says so, the waiting messages are all still there,
    # and the API's own connection to the broker recovers for new searches.
    deadline = time.monotonic() + 30
    while (health := d.http.get("/health")).status_code != 200:
        assert time.monotonic() < deadline, health.text
        time.sleep(0.2)
    assert queue_state("download", vhost=d.vhost)[0] == WAITING
    after = d.submit(field(1.0))

    d.start_worker(threads=2)
    final = d.wait_final([*waiting, after], timeout=120)
    lost = sum(1 for s in final.values() if s["state"] != "done")
    jobs = d.db_jobs()
    duplicates = len(jobs) - (WAITING + 1) + sum(d.duplicates(j.id) for j in jobs)
    summary_line("RabbitMQ stop_app/start_app", faults=1, lost=lost, duplicates=duplicates)
    assert lost == 0, f"{final}\n{d.logs()}"
    assert duplicates == 0
    assert sorted(j.state for j in jobs) == ["done"] * (WAITING + 1)


def test_broker_restart_under_running_workers(deploy):
    d = deploy()
    d.start_api()
    d.start_worker(threads=2)
    slow = d.submit(field(4.0, faint=True))  # faint search: in fast_detect for several seconds
    waiting = [d.submit(field(1.0)) for _ in range(2)]
    d.wait_status(slow, lambda s: s["state"] == "fast_detect", what="fast_detect")
    with rabbitmq_stopped():
        _health_once_probed(d, 503)
    jobs = [slow, *waiting]
    final = d.wait_final(jobs, timeout=150)  # the workers reconnect by themselves
    lost = sum(1 for s in final.values() if s["state"] != "done")
    duplicates = sum(d.duplicates(j) for j in jobs)
    summary_line(
        "RabbitMQ restart under running workers",
        faults=1,
        lost=lost,
        duplicates=duplicates,
        stage_runs=dict(d.stage_runs(slow)),
    )
    assert lost == 0, f"{final}\n{d.logs()}"
    assert duplicates == 0
    assert final[slow]["counts"]["tracks"] == len(d.tracks(slow)) > 0


def test_a_duplicate_stage_never_rewrites_a_finished_job(make_env, monkeypatch):
    """The race seen above made deterministic: two deliveries of one detailed_detect."""
    settings = make_env()
    with TestClient(create_app(dispatch=lambda job_id: None)) as http:
        job_id = http.post("/search", json=field(1.0)).json()["job_id"]
    ctx = pipeline.Context(settings)
    for stage in (pipeline.download, pipeline.ingest, pipeline.fast):
        stage(ctx, job_id)

    engine = pipeline.detailed_detect
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()

    def detailed_detect(fast, *, config, progress):
        if not first_in.is_set():  # the first delivery: ends once the second one runs
            first_in.set()
            assert second_in.wait(30)
        else:  # the redelivered copy: still going when the first has finished the job
            second_in.set()
            assert first_done.wait(30)
            progress("fit", 1, 2)
        return engine(fast, config=config)

    monkeypatch.setattr(pipeline, "detailed_detect", detailed_detect)
    errors: list[BaseException] = []

    def deliver(done: threading.Event | None) -> None:
        try:
            pipeline.detailed(ctx, job_id)
        except pipeline.Cancelled:  # what the actor does with it: nothing
            pass
        except BaseException as exc:
            errors.append(exc)
        if done is not None:
            done.set()

    first = threading.Thread(target=deliver, args=(first_done,))
    first.start()
    assert first_in.wait(30)
    second = threading.Thread(target=deliver, args=(None,))
    second.start()
    first.join(60)
    second.join(60)
    assert errors == []
    with TestClient(create_app(dispatch=lambda job_id: None)) as http:
        status = http.get(f"/status/{job_id}").json()
    assert status["state"] == "done"
    assert status["percent"] == 100.0, status
