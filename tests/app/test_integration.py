"""The deployed system: ``astrohunter api`` and workers as processes, RabbitMQ and Redis.

Nothing in-process here: the services run as subprocesses against the real
RabbitMQ (127.0.0.1:5672) and Redis (127.0.0.1:6379), and the test speaks
HTTP to the API. Searches use vetted random fields so that runs sharing the
broker, Redis or PostgreSQL never submit the same search; every wait is
bounded and every process is stopped by the fixtures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.pipeline import STAGES

from ..conftest import check_contract, need
from .conftest import (
    FINAL,
    POSTGRES_URL,
    SERVICE_ENV,
    check_mpc,
    check_recovery,
    free_port,
    port_open,
    queue_state,
    rabbitmq_vhost,
    random_field,
)

_SCRIPT = Path(sys.executable).with_name("astrohunter")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
ACTIVE = ("queued", "downloading", "ingesting", "fast_detect", "detailed_detect")
JOB_TIMEOUT_S = 120.0
QUEUES = ("download", "data", "fast_detect", "detailed_detect")


class Services:
    """Processes of one deployment; each in its own process group, logs in files."""

    def __init__(self, root: Path, env: dict[str, str], vhost: str) -> None:
        self.root, self.env, self.vhost = root, env, vhost
        self.procs: dict[str, subprocess.Popen] = {}
        self.api_url = ""
        self.jobs: list[str] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [*COMMAND, *args],
            env=self.env,
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_api(self) -> str:
        port = free_port()
        self.start("api", "api", "--port", str(port))
        self.api_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                r = httpx.get(f"{self.api_url}/health", timeout=5)
                if r.status_code == 200 and r.json()["ok"]:
                    return self.api_url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the API did not become healthy in 30 s\n{self.logs()}")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def logs(self, tail: int = 30) -> str:
        """The end of each service's log (without status polls), and the queues' state."""
        out = []
        for name in self.procs:
            lines = (self.root / f"{name}.log").read_text(errors="replace").splitlines()
            lines = [line for line in lines if "GET /status/" not in line]
            out.append(f"--- {name} (last {tail} lines) ---\n" + "\n".join(lines[-tail:]))
        try:
            depth = {q: queue_state(q, vhost=self.vhost) for q in QUEUES}
            out.append(f"--- RabbitMQ (messages ready, consumers) ---\n{depth}")
        except Exception as exc:  # diagnostics only
            out.append(f"--- RabbitMQ: {exc!r}")
        return "\n".join(out)

    def stop(self) -> None:
        """Cancel jobs left running, then stop every process (SIGTERM, SIGKILL after 15 s)."""
        for job_id in self.jobs:
            try:
                httpx.delete(f"{self.api_url}/jobs/{job_id}", timeout=5)
            except httpx.HTTPError:
                pass
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _env(root: Path, database_url: str, rabbitmq_host: str, vhost: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*SERVICE_ENV, "ASTROHUNTER_BROKER")}
    env.update(
        ASTROHUNTER_BROKER="rabbitmq",
        RABBITMQ_HOST=rabbitmq_host,
        RABBITMQ_VHOST=vhost,
        REDIS_HOST="127.0.0.1",
        DATA_DIR=str(root / "data"),
        DATABASE_URL=database_url,
        MIN_DISK_SPACE_GB="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def _need_broker_and_redis() -> None:
    need(port_open("127.0.0.1", 5672), "RabbitMQ at 127.0.0.1:5672")
    need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Services]:
    """API and one ``worker all`` (2 threads) on RabbitMQ and Redis, SQLite in a temp folder."""
    _need_broker_and_redis()
    root = tmp_path_factory.mktemp("stack")
    database_url = f"sqlite:///{root / 'data' / 'astrohunter.db'}"
    with rabbitmq_vhost() as (host, vhost):
        services = Services(root, _env(root, database_url, host, vhost), vhost)
        try:
            services.start("worker-all", "worker", "all", "--threads", "2")
            services.start_api()
            yield services
        finally:
            services.stop()


def submit(services: Services, http: httpx.Client, body: dict) -> dict:
    r = http.post("/search", json=body)
    assert r.status_code == 202, r.text
    accepted = r.json()
    services.jobs.append(accepted["job_id"])
    return accepted


def follow(services: Services, http: httpx.Client, job_id: str) -> tuple[dict, list[dict]]:
    """Poll ``/status`` until the job ends (bounded); returns the last status and all seen."""
    seen = []
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        r = http.get(f"/status/{job_id}")
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if seen[-1]["state"] in FINAL:
            return seen[-1], seen
        services.check_alive()
        time.sleep(0.05)
    pytest.fail(
        f"job {job_id} still {seen[-1]['state']} after {JOB_TIMEOUT_S} s\n{services.logs()}"
    )


def check_results(services: Services, http: httpx.Client, job_id: str) -> None:
    """Tracks (contract, recovery against the simulator's truth) and the MPC report."""
    contract = http.get(f"/jobs/{job_id}/tracks").raise_for_status().json()
    check_contract(contract)
    truth_path = Path(services.env["DATA_DIR"]) / "jobs" / job_id / "truth.json"
    check_recovery(contract, json.loads(truth_path.read_text()))
    report = http.get(f"/jobs/{job_id}/report.mpc").raise_for_status().text
    check_mpc(report, contract)


def test_search_over_rabbitmq_and_redis(stack):
    body = random_field()
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        first = submit(stack, http, body)
        status, seen = follow(stack, http, first["job_id"])
        assert status["state"] == "done", f"{status}\n{stack.logs()}"
        assert status["percent"] == 100.0 and status["counts"]["frames"] == 8
        assert set(status["timings_s"]) == {
            "downloading",
            "ingesting",
            "fast_detect",
            "detailed_detect",
        }
        running = [s for s in seen if s["state"] in ACTIVE]
        assert any(s["live"] for s in running), "status never came from Redis while running"
        assert status["live"] is False  # a finished job is read from the database
        check_results(stack, http, first["job_id"])

        # The same search once the first has finished is a new job, run again.
        again = submit(stack, http, body)
        assert again["job_id"] != first["job_id"]
        assert again["duplicate_of_running"] is False
        status, _ = follow(stack, http, again["job_id"])
        assert status["state"] == "done", f"{status}\n{stack.logs()}"


def test_cli_search_against_the_running_api(stack):
    body = random_field()
    proc = subprocess.run(
        [
            *COMMAND,
            "search",
            "--server",
            stack.api_url,
            "--ra",
            str(body["ra"]),
            "--dec",
            str(body["dec"]),
            "--radius",
            str(body["radius_arcmin"]),
            "--seed",
            str(body["seed"]),
            "--source",
            "simulated",
        ],
        env={**stack.env, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SIMULATED" in proc.stdout
    assert "moving object(s) found" in proc.stdout
    assert stack.api_url in proc.stderr  # "job <id> at <server>"


def test_each_queue_is_served_by_its_own_service(tmp_path):
    _need_broker_and_redis()
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    with rabbitmq_vhost() as (host, vhost):
        _run_per_stage_services(
            Services(tmp_path, _env(tmp_path, POSTGRES_URL, host, vhost), vhost)
        )


def _run_per_stage_services(services: Services) -> None:
    try:
        for stage in ("download", "data", "fast_detect"):
            services.start(f"worker-{stage}", "worker", stage)
        services.start_api()
        with httpx.Client(base_url=services.api_url, timeout=30) as http:
            job_id = submit(services, http, random_field())["job_id"]

            # Three services take the job as far as the fast detector; with no
            # detailed_detect service it waits, its message in that queue.
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while (
                "fast_detect" not in (status := http.get(f"/status/{job_id}").json())["timings_s"]
            ):
                assert status["state"] in ACTIVE, f"{status}\n{services.logs()}"
                assert time.monotonic() < deadline, f"{status}\n{services.logs()}"
                services.check_alive()
                time.sleep(0.1)
            time.sleep(2.0)
            status = http.get(f"/status/{job_id}").json()
            assert status["state"] == "fast_detect" and status["percent"] == STAGES["fast"][2], (
                status
            )
            ready, consumers = queue_state("detailed_detect", vhost=services.vhost)
            assert ready >= 1 and consumers == 0, (ready, consumers)

            services.start("worker-detailed_detect", "worker", "detailed_detect")
            status, _ = follow(services, http, job_id)
            assert status["state"] == "done", f"{status}\n{services.logs()}"
            check_results(services, http, job_id)
    finally:
        services.stop()
