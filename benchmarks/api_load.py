"""Load benchmark of the deployed services: many concurrent searches through the API.

Starts ``astrohunter api`` and ``astrohunter worker all`` (``--processes`` x
``--threads``) against the RabbitMQ and Redis on 127.0.0.1, submits
``--jobs`` searches of small simulated fields (distinct positions and seeds)
at once from a thread pool, and follows every job by polling ``GET /status``
from the same threads, timing each request. It prints how many jobs ended in
each state, the end-to-end time per job (submission to final state), the wall
time and throughput, the mean seconds per stage, the status-request latency
and the machine. It exits 1 if any job did not finish ``done``.

Run from the repository root with the venv active (RabbitMQ and Redis up)::

    python benchmarks/api_load.py                         # 50 jobs, 2 processes x 2 threads
    python benchmarks/api_load.py --jobs 20 --processes 1 --database-url postgresql+psycopg://...

This is a measurement, not a test: nothing is asserted but completion. The
services get a private RabbitMQ vhost when ``rabbitmqctl`` is available
(queue names are fixed, so deployments sharing a vhost take each other's
messages); otherwise the default vhost is used and the run warns when other
workers consume from it.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).with_name("astrohunter")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
FINAL = ("done", "failed", "cancelled")
QUEUES = ("download", "data", "fast_detect", "detailed_detect")
#: Variables of the outer environment that would point the services elsewhere.
SERVICE_ENV = (
    "ASTROHUNTER_BROKER",
    "DATA_DIR",
    "DATABASE_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "RABBITMQ_HOST",
    "RABBITMQ_PORT",
    "RABBITMQ_VHOST",
)


@dataclass
class JobRun:
    """What one client thread saw of one search."""

    body: dict
    job_id: str = ""
    state: str = "not submitted"
    error: str | None = None
    submitted: float = 0.0
    finished: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    status_latency_s: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.finished - self.submitted


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rabbitmqctl(*args: str) -> bool:
    try:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _other_consumers() -> dict[str, int]:
    import pika

    params = pika.ConnectionParameters("127.0.0.1", 5672, "/", socket_timeout=5)
    out = {}
    with pika.BlockingConnection(params) as connection:
        for queue in QUEUES:
            channel = connection.channel()
            try:
                out[queue] = channel.queue_declare(queue, passive=True).method.consumer_count
            except pika.exceptions.ChannelClosedByBroker:
                out[queue] = 0
    return out


class Deployment:
    """API and workers as subprocesses (own process groups), logs in ``workdir``."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.procs: list[subprocess.Popen] = []
        self.vhost: str | None = None
        self.url = ""

    def __enter__(self) -> Deployment:
        rabbitmq_host = "127.0.0.1"
        vhost = f"astrohunter-bench-{uuid.uuid4().hex[:12]}"
        if shutil.which("rabbitmqctl") and _rabbitmqctl("add_vhost", vhost):
            self.vhost = vhost
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        else:
            busy = _other_consumers()
            if any(busy.values()):
                print(f"warning: other workers consume these queues: {busy}", file=sys.stderr)
        database_url = self.args.database_url or f"sqlite:///{self.workdir / 'astrohunter.db'}"
        env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}
        env.update(
            ASTROHUNTER_BROKER="rabbitmq",
            RABBITMQ_HOST=rabbitmq_host,
            RABBITMQ_VHOST=self.vhost or "/",
            REDIS_HOST="127.0.0.1",
            DATA_DIR=str(self.workdir / "data"),
            DATABASE_URL=database_url,
            MIN_DISK_SPACE_GB="0",
        )
        self.env = env
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._start("api", "api", "--port", str(port))
        self._start(
            "worker",
            "worker",
            "all",
            "--processes",
            str(self.args.processes),
            "--threads",
            str(self.args.threads),
        )
        self._wait_healthy()
        return self

    def _start(self, name: str, *args: str) -> None:
        log = (self.workdir / f"{name}.log").open("w")
        self.procs.append(
            subprocess.Popen(
                [*COMMAND, *args],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a service exited early; see the logs in {self.workdir}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the API was not healthy within {timeout} s; logs in {self.workdir}")

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self.vhost:
            _rabbitmqctl("delete_vhost", self.vhost)


def run_job(url: str, run: JobRun, *, start: threading.Barrier, poll_s: float, deadline: float):
    """Submit one search, then poll its status until it ends or the deadline passes."""
    with httpx.Client(base_url=url, timeout=60) as http:
        start.wait()
        run.submitted = time.monotonic()
        r = http.post("/search", json=run.body)
        if r.status_code != 202:
            run.state, run.error = f"refused {r.status_code}", r.text[:200]
            run.finished = time.monotonic()
            return run
        run.job_id = r.json()["job_id"]
        while True:
            t0 = time.perf_counter()
            r = http.get(f"/status/{run.job_id}")
            run.status_latency_s.append(time.perf_counter() - t0)
            status = r.json()
            run.state = status["state"]
            if run.state in FINAL:
                run.finished = time.monotonic()
                run.error, run.timings = status.get("error"), status.get("timings_s", {})
                return run
            if time.monotonic() > deadline:
                run.state = f"unfinished ({run.state})"
                run.finished = time.monotonic()
                return run
            time.sleep(poll_s)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linearly interpolated."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"{usable} usable cores ({os.cpu_count()} logical), {model}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"load average at start {load[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50, help="concurrent searches (50)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker process (2)")
    parser.add_argument("--radius", type=float, default=2.0, help="field half-width, arcmin (2)")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between status polls")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument("--seed", type=int, help="random seed of positions (default: random)")
    parser.add_argument("--database-url", help="default: SQLite in the work folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    bodies = [
        {
            "ra": round(rng.uniform(0.0, 359.999), 5),
            "dec": round(rng.uniform(-70.0, 70.0), 5),
            "radius_arcmin": args.radius,
            "seed": rng.randrange(1, 2**31),
            "source": "simulated",
        }
        for _ in range(args.jobs)
    ]
    workdir = Path(tempfile.mkdtemp(prefix="astrohunter-load-"))
    print(f"machine: {machine()}")
    print(
        f"services: api + worker all --processes {args.processes} --threads {args.threads}; "
        f"RabbitMQ and Redis at 127.0.0.1; database "
        f"{(args.database_url or 'sqlite').split('://')[0]}; work folder {workdir}"
    )
    try:
        with Deployment(args, workdir) as deployment:
            print(f"vhost: {deployment.vhost or '/ (shared)'}; api {deployment.url}")
            runs = [JobRun(body) for body in bodies]
            start = threading.Barrier(len(runs) + 1)
            with ThreadPoolExecutor(len(runs)) as pool:
                futures = []
                for run in runs:
                    futures.append(
                        pool.submit(
                            run_job,
                            deployment.url,
                            run,
                            start=start,
                            poll_s=args.poll,
                            deadline=time.monotonic() + args.timeout,
                        )
                    )
                start.wait()
                t0 = time.monotonic()
                for future in futures:
                    future.result()
            wall = max(r.finished for r in runs) - t0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    states = Counter(r.state for r in runs)
    done = [r for r in runs if r.state == "done"]
    e2e = [r.seconds for r in done]
    latency = [s for r in runs for s in r.status_latency_s]
    print(f"\njobs: {len(runs)} submitted at once; final states: {dict(states)}")
    for r in runs:
        if r.state != "done":
            print(f"  {r.job_id or '-'} {r.state}: {r.error}")
    if e2e:
        print(
            f"end-to-end per job (s): p50 {percentile(e2e, 50):.1f}  p95 {percentile(e2e, 95):.1f}"
            f"  max {max(e2e):.1f}  min {min(e2e):.1f}"
        )
        stages = ("downloading", "ingesting", "fast_detect", "detailed_detect")
        means = {s: statistics.fmean(r.timings.get(s, 0.0) for r in done) for s in stages}
        busy = sum(means.values())
        print(
            "mean seconds per stage: "
            + ", ".join(f"{s} {v:.2f}" for s, v in means.items())
            + f" (total {busy:.2f} s of work per job)"
        )
    print(
        f"wall time: {wall:.1f} s; throughput: {len(done) / wall * 60:.1f} jobs/min "
        f"({len(done)} done)"
    )
    print(
        f"GET /status latency (ms, {len(latency)} requests): "
        f"p50 {percentile(latency, 50) * 1000:.1f}  p95 {percentile(latency, 95) * 1000:.1f}"
        f"  max {max(latency) * 1000:.1f}"
    )
    return 0 if len(done) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
