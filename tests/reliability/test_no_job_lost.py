"""Ways to lose a job, or stop a service, that an attack found (issue 12), each undone.

Every test runs a real deployment (``astrohunter api`` and workers as
processes, the RabbitMQ and Redis of this machine, a private vhost) and
breaks it the way the attack did.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.api.main import WATCH_EVERY_S
from app.broker import PROBE_TIMEOUT_S
from app.db.base import session_factory
from app.db.models import Job

from .conftest import field
from .harness import black_hole, children, disk_alarm, summary_line

pytestmark = pytest.mark.reliability


def _orphan(d, body: dict) -> str:
    """A job the API saved and died before sending: its broker hangs, it is killed mid-POST."""
    real_port = d.env.get("RABBITMQ_PORT", "5672")
    with black_hole() as port:
        d.env["RABBITMQ_PORT"] = str(port)
        d.start_api(healthy=False)
        threading.Thread(
            target=lambda: httpx.post(f"{d.url}/search", json=body, timeout=30), daemon=True
        ).start()
        deadline = time.monotonic() + 20
        while not d.db_jobs():
            assert time.monotonic() < deadline, "the job was never saved"
            time.sleep(0.05)
        d.kill("api")
        d.env["RABBITMQ_PORT"] = real_port
    (orphan,) = d.db_jobs()
    assert orphan.state == "queued" and orphan.dispatched_at is None
    return orphan.id


def test_an_api_killed_between_saving_and_sending_a_job_loses_nothing(deploy):
    d = deploy(env={"ASTROHUNTER_REDISPATCH_AFTER": "3"})
    d.start_worker(threads=2)
    body = field()
    orphan = _orphan(d, body)
    d.start_api()  # it finds the unsent job once its lease lapses, and sends it
    final = d.wait_final([orphan], timeout=120)
    assert final[orphan]["state"] == "done", f"{final}\n{d.logs()}"
    again = d.http.post("/search", json=body).json()  # a repeat now is a new job
    assert again["job_id"] != orphan and not again["duplicate_of_running"]
    assert d.wait_final([again["job_id"]], timeout=120)[again["job_id"]]["state"] == "done"
    assert len(d.db_jobs()) == 2 and d.duplicates(orphan) == 0
    print(summary_line("API killed between record and publish", faults=1, lost=0, duplicates=0))


def test_a_repeat_of_a_search_whose_job_was_never_sent_sends_it(deploy):
    d = deploy(env={"ASTROHUNTER_REDISPATCH_AFTER": "600"})  # the API's own sweep stays away
    d.start_worker(threads=2)
    body = field()
    orphan = _orphan(d, body)
    with session_factory(d.database_url)() as session:  # as if its lease had lapsed
        session.get(Job, orphan).dispatch_lease = time.time() - 1
        session.commit()
    d.start_api()
    answer = d.http.post("/search", json=body).json()
    assert answer["job_id"] == orphan and answer["duplicate_of_running"], answer
    assert d.wait_final([orphan], timeout=120)[orphan]["state"] == "done"


def test_a_job_whose_worker_keeps_dying_fails_and_the_queue_moves_on(deploy):
    """SIGKILLed in the same stage again and again: failed after the delivery limit."""
    d = deploy(env={"ASTROHUNTER_MAX_DELIVERIES": "3"})
    d.start_api()
    d.start_worker(threads=1)
    poison = d.submit(field(10.0, faint=False))
    kills = 0
    for k in range(3):
        deadline = time.monotonic() + 120  # this delivery's start, not the last one's status
        while d.stage_runs(poison)["fast_detect"] <= k:
            assert time.monotonic() < deadline, d.logs()
            time.sleep(0.05)
        d.kill("worker")
        kills += 1
        d.start_worker(threads=1)
    final = d.wait_final([poison], timeout=120)[poison]
    assert final["state"] == "failed", f"{final}\n{d.logs()}"
    assert "fast_detect stage was started 3 times" in final["error"], final["error"]
    assert d.stage_runs(poison)["fast_detect"] == 3
    healthy = d.submit(field())
    assert d.wait_final([healthy], timeout=120)[healthy]["state"] == "done"
    print(summary_line("crash-looping job", faults=kills, lost=0, duplicates=0))


def test_a_broker_resource_alarm_never_freezes_the_api(deploy):
    """Sends time out with 503 naming the alarm; reads stay fast; recovery needs nothing."""
    d = deploy()
    d.start_api()
    d.start_worker(threads=2)
    known = d.submit(field())
    d.wait_final([known], timeout=120)
    slow_reads: list[tuple[str, float]] = []
    stop = threading.Event()

    def read_all_the_time() -> None:
        with httpx.Client(base_url=d.url, timeout=10) as http:
            while not stop.is_set():
                for path in ("/health", f"/status/{known}", "/jobs"):
                    started = time.monotonic()
                    http.get(path)
                    if (took := time.monotonic() - started) > 1.0:
                        slow_reads.append((path, took))
                time.sleep(0.05)

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        with disk_alarm():
            # The API's background probe sees the alarm by its next round: one
            # interval, plus the probe's own wait for a blocked publish.
            seen_within = WATCH_EVERY_S + PROBE_TIMEOUT_S + 3.0
            raised = time.monotonic()
            while (health := d.http.get("/health")).status_code != 503:
                assert time.monotonic() - raised < seen_within, health.text
                time.sleep(0.2)
            assert "blocked" in health.text, health.text
            with ThreadPoolExecutor(12) as pool:
                started = time.monotonic()
                burst = list(pool.map(lambda _: d.http.post("/search", json=field()), range(12)))
                burst_s = time.monotonic() - started
            assert {r.status_code for r in burst} == {503}, [r.text for r in burst]
            assert all("broker" in r.json()["detail"] for r in burst)
            assert burst_s < 15.0, burst_s
            assert d.http.get("/jobs").json()["total"] == 1  # refused jobs leave nothing
        cleared = time.monotonic()
        while (accepted := d.http.post("/search", json=field())).status_code != 202:
            assert time.monotonic() - cleared < 30, "POST still refused 30 s after the alarm"
            time.sleep(0.2)
        recovery_s = time.monotonic() - cleared
    finally:
        stop.set()
        reader.join(30)
    assert slow_reads == [], slow_reads
    job = accepted.json()["job_id"]
    assert d.wait_final([job], timeout=120)[job]["state"] == "done"
    assert len(d.db_jobs()) == 2
    print(
        summary_line(
            "RabbitMQ disk alarm during a submit burst",
            faults=1,
            lost=0,
            duplicates=0,
            refused_503=len(burst),
            recovery_s=round(recovery_s, 1),
        )
    )


def test_a_worker_service_that_loses_a_child_comes_back_with_its_jobs(deploy):
    """Dramatiq's parent stops when a child dies; supervised (systemd, compose), it restarts
    and the job in flight is delivered again."""
    d = deploy()
    d.start_api()
    d.start_worker(threads=2)
    job = d.submit(field(10.0, faint=False))
    d.wait_status(job, lambda s: s["state"] == "fast_detect", timeout=120, interval=0.02)
    parent = d.procs["worker"].pid
    kids = children(parent)
    assert kids, "the worker service has no child processes"
    os.kill(kids[0], signal.SIGKILL)
    d.procs["worker"].wait(timeout=60)  # the parent notices and shuts the service down
    d.procs.pop("worker")
    d._consumers.pop("worker", None)
    d.start_worker(threads=2)  # what the supervisor does
    assert d.wait_final([job], timeout=120)[job]["state"] == "done"


def test_below_the_free_space_limit_nothing_is_written_and_searches_get_503(deploy):
    d = deploy()
    d.start_api()
    job = d.submit(field())  # queued: no worker yet
    d.kill("api")
    d.env["MIN_DISK_SPACE_GB"] = "1000000"
    d.start_api(healthy=False)
    assert d.http.get("/health").status_code == 503
    refused = d.http.post("/search", json=field())
    assert refused.status_code == 503 and "MIN_DISK_SPACE_GB=1e+06" in refused.text, refused.text
    d.start_worker(threads=1)
    final = d.wait_final([job], timeout=60)[job]
    assert final["state"] == "failed" and "MIN_DISK_SPACE_GB" in final["error"], final
    assert not (d.root / "data" / "jobs" / job / "raw").exists()
