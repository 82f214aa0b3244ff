"""AstroHunter deployed as processes, and the faults the reliability tests inject.

Plain classes and functions (no pytest fixtures), so that
``benchmarks/reliability_load.py`` uses them too. A :class:`Deployment` runs
``astrohunter api`` and workers as subprocesses, each in its own process
group with its log in the deployment's folder, against the real RabbitMQ (a
private vhost) and Redis on 127.0.0.1, and SQLite (or ``DATABASE_URL``) in
its folder. The fault helpers stop and start RabbitMQ's broker
(``rabbitmqctl stop_app``/``start_app``) and Redis, and always leave both
answering again. Every wait is bounded; a failed check raises
:class:`ServiceError` (an ``AssertionError``) with the services' logs.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.db.base import session_factory
from app.db.models import Event, Job, TrackRecord

from ..app.conftest import FINAL, SERVICE_ENV, free_port, port_open, queue_state

__all__ = [
    "ACTIVE",
    "FINAL",
    "QUEUES",
    "REDIS_START",
    "Deployment",
    "LoadRun",
    "ServiceError",
    "disk_alarm",
    "rabbitmq_answers",
    "rabbitmq_blocked",
    "rabbitmq_stopped",
    "redis_answers",
    "redis_stopped",
    "restore_services",
    "rss_bytes",
    "run_load",
    "start_rabbitmq",
    "start_redis",
    "stop_rabbitmq",
    "stop_redis",
    "summary_line",
]

_SCRIPT = Path(sys.executable).with_name("astrohunter")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
ACTIVE = ("queued", "downloading", "ingesting", "fast_detect", "detailed_detect")
QUEUES = ("download", "data", "fast_detect", "detailed_detect")
#: How this machine's Redis was started (and is started again after a test stops it).
REDIS_START = (
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
)  # fmt: skip
#: Variables of the outer environment that must not reach the services.
_OUTER_ONLY = (*SERVICE_ENV, "ASTROHUNTER_BROKER", "ASTROHUNTER_API_KEY")
#: Every summary line printed in this process (the pytest run shows them at the end).
SUMMARIES: list[str] = []


class ServiceError(AssertionError):
    """A deployment did not behave (the message carries its logs)."""


def _wait(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def _run(*command: str, timeout: float = 60.0) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


# --------------------------------------------------------------------------- RabbitMQ


def rabbitmq_answers(timeout: float = 3.0) -> bool:
    """True when RabbitMQ at 127.0.0.1:5672 accepts an AMQP connection."""
    if not port_open("127.0.0.1", 5672, timeout=timeout):
        return False
    import pika

    params = pika.ConnectionParameters(
        "127.0.0.1",
        5672,
        "/",
        pika.PlainCredentials("guest", "guest"),
        socket_timeout=timeout,
        connection_attempts=1,
    )
    try:
        pika.BlockingConnection(params).close()
    except Exception:
        return False
    return True


def stop_rabbitmq(timeout: float = 60.0) -> None:
    """Stop RabbitMQ's broker application (the Erlang node keeps running)."""
    _run("rabbitmqctl", "-q", "stop_app", timeout=timeout)
    if not _wait(lambda: not port_open("127.0.0.1", 5672, timeout=0.5), timeout):
        raise ServiceError(f"RabbitMQ still listens {timeout} s after rabbitmqctl stop_app")


def start_rabbitmq(timeout: float = 120.0) -> None:
    """Start RabbitMQ's broker again (``start_app``; the whole server if the node is gone)."""
    if rabbitmq_answers():
        return
    _run("rabbitmqctl", "-q", "start_app", timeout=timeout)
    if _wait(rabbitmq_answers, timeout / 2, interval=0.5):
        return
    status = _run("rabbitmqctl", "-q", "status", timeout=30)
    if status is None or status.returncode != 0:  # the node itself is down
        _run("rabbitmq-server", "-detached", timeout=30)
        _run("rabbitmqctl", "-q", "await_startup", timeout=timeout)
    _run("rabbitmqctl", "-q", "start_app", timeout=timeout)
    if not _wait(rabbitmq_answers, timeout / 2, interval=0.5):
        raise ServiceError(f"RabbitMQ did not answer again within {timeout} s")


@contextmanager
def rabbitmq_stopped() -> Iterator[None]:
    """RabbitMQ's broker stopped inside the block, and answering again after it."""
    try:
        stop_rabbitmq()
        yield
    finally:
        start_rabbitmq()


def _disk_free_limit() -> int | None:
    done = _run("rabbitmqctl", "-q", "eval", "rabbit_disk_monitor:get_disk_free_limit().")
    text = done.stdout.strip() if done is not None and done.returncode == 0 else ""
    return int(text) if text.isdigit() else None


def rabbitmq_blocked() -> bool:
    """True while RabbitMQ's disk alarm is raised (publishers are blocked)."""
    done = _run("rabbitmqctl", "-q", "eval", "rabbit_alarm:get_alarms().")
    return done is not None and "disk" in done.stdout


@contextmanager
def disk_alarm() -> Iterator[None]:
    """RabbitMQ's disk alarm raised inside the block (free-space limit above the disk's size).

    Node-wide, as a real full disk would be; the limit is always set back.
    """
    before = _disk_free_limit() or 50_000_000
    try:
        _run("rabbitmqctl", "-q", "set_disk_free_limit", "1000000GB")
        if not _wait(rabbitmq_blocked, 30, interval=0.2):
            raise ServiceError("RabbitMQ raised no disk alarm within 30 s")
        yield
    finally:
        _run("rabbitmqctl", "-q", "set_disk_free_limit", str(before))
        _wait(lambda: not rabbitmq_blocked(), 30, interval=0.2)


@contextmanager
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a broker that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


# --------------------------------------------------------------------------- processes


def children(pid: int) -> list[int]:
    """The direct children of a process."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (a worker service's processes)."""
    total, pids = 0, [pid]
    while pids:
        p = pids.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        pids += children(p)
    return total


# --------------------------------------------------------------------------- Redis


def redis_answers(timeout: float = 1.0) -> bool:
    """True when Redis at 127.0.0.1:6379 answers PING."""
    import redis

    client = redis.Redis("127.0.0.1", 6379, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def stop_redis(timeout: float = 30.0) -> None:
    """Shut Redis down (nothing saved: this Redis keeps no data on disk)."""
    _run("redis-cli", "-p", "6379", "shutdown", "nosave", timeout=timeout)
    if not _wait(lambda: not port_open("127.0.0.1", 6379, timeout=0.5), timeout):
        raise ServiceError(f"Redis still listens {timeout} s after SHUTDOWN")


def start_redis(timeout: float = 30.0) -> None:
    """Start Redis the way this machine started it, and wait until it answers."""
    if redis_answers():
        return
    _run(*REDIS_START, timeout=timeout)
    if not _wait(redis_answers, timeout, interval=0.2):
        raise ServiceError(f"Redis did not answer within {timeout} s of `{' '.join(REDIS_START)}`")


@contextmanager
def redis_stopped() -> Iterator[None]:
    """Redis stopped inside the block (the block may start it earlier), answering after it."""
    try:
        stop_redis()
        yield
    finally:
        start_redis()


def restore_services() -> list[str]:
    """Start RabbitMQ and Redis if either is down; what had to be restored."""
    restored = []
    if not rabbitmq_answers():
        start_rabbitmq()
        restored.append("RabbitMQ")
    if not redis_answers():
        start_redis()
        restored.append("Redis")
    if rabbitmq_blocked():  # a disk alarm left by a test: this machine's default limit
        _run("rabbitmqctl", "-q", "set_disk_free_limit", "50000000")
        restored.append("RabbitMQ's disk limit")
    return restored


# --------------------------------------------------------------------------- deployment


class Deployment:
    """API and workers of one deployment, as processes; HTTP and database access to it.

    Parameters
    ----------
    root : Path
        Its folder: ``data/`` (``DATA_DIR``, SQLite) and one log per process.
    vhost : str
        The RabbitMQ vhost its services use (a private one: queue names are fixed).
    database_url : str, optional
        ``DATABASE_URL``; SQLite in ``root/data`` by default.
    env : dict, optional
        More environment variables for every process.
    """

    def __init__(
        self,
        root: Path,
        vhost: str,
        *,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.root, self.vhost = root, vhost
        root.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{root / 'data' / 'astrohunter.db'}"
        self.env = {k: v for k, v in os.environ.items() if k not in _OUTER_ONLY}
        self.env.update(
            ASTROHUNTER_BROKER="rabbitmq",
            RABBITMQ_HOST="127.0.0.1",
            RABBITMQ_VHOST=vhost,
            REDIS_HOST="127.0.0.1",
            DATA_DIR=str(root / "data"),
            DATABASE_URL=self.database_url,
            MIN_DISK_SPACE_GB="0",
            PYTHONUNBUFFERED="1",
            **(env or {}),
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=15)
        self.procs: dict[str, subprocess.Popen] = {}
        self._consumers: dict[str, Counter] = {}

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # processes ---------------------------------------------------------------

    def start(self, name: str, *args: str) -> subprocess.Popen:
        """Run ``astrohunter ARGS`` as ``name`` (its own process group; log appended)."""
        if name in self.procs and self.procs[name].poll() is None:
            raise ServiceError(f"{name} is already running")
        with (self.root / f"{name}.log").open("a") as log:
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

    def start_api(self, *, timeout: float = 60.0, healthy: bool = True) -> None:
        """Start ``astrohunter api`` on this deployment's port; wait until it answers."""
        self.start("api", "api", "--port", str(self.port))

        def answers() -> bool:
            self.check_alive()
            try:
                r = self.http.get("/health", timeout=5)
            except httpx.HTTPError:
                return False
            return r.status_code == 200 or not healthy

        if not _wait(answers, timeout, interval=0.2):
            raise ServiceError(f"the API did not answer /health in {timeout} s\n{self.logs()}")

    def start_worker(
        self,
        name: str = "worker",
        stage: str = "all",
        *,
        processes: int = 1,
        threads: int = 2,
        wait: bool = True,
        timeout: float = 90.0,
    ) -> None:
        """Start ``astrohunter worker STAGE``; wait until it consumes its queue(s)."""
        queues = QUEUES if stage == "all" else (stage,)
        self.start(name, "worker", stage, "--processes", str(processes), "--threads", str(threads))
        self._consumers[name] = Counter(dict.fromkeys(queues, processes))
        if not wait:
            return
        expected = self._expected_consumers()

        def consuming() -> bool:
            self.check_alive()
            return all(self.consumers(q) >= expected[q] for q in queues)

        if not _wait(consuming, timeout, interval=0.2):
            raise ServiceError(f"{name} did not consume {queues} in {timeout} s\n{self.logs()}")

    def _expected_consumers(self) -> Counter:
        """Consumers per queue of the workers started and not killed (one per process)."""
        return sum(self._consumers.values(), Counter())

    def consumers(self, queue: str) -> int:
        """Consumers of ``queue`` in this deployment's vhost (0 when not declared yet)."""
        try:
            return queue_state(queue, vhost=self.vhost)[1]
        except Exception:
            return 0

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group of ``name`` and reap it (no longer watched)."""
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)
        if self._consumers.pop(name, None):
            # RabbitMQ drops the dead worker's consumers (and requeues its messages).
            expected = self._expected_consumers()
            if not _wait(
                lambda: all(self.consumers(q) <= expected[q] for q in QUEUES), 30, interval=0.1
            ):
                raise ServiceError(f"RabbitMQ still lists {name}'s consumers 30 s after the kill")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ServiceError(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def logs(self, tail: int = 30) -> str:
        """The end of each process's log (without status polls), and the queues' state."""
        out = []
        for log in sorted(self.root.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            lines = [line for line in lines if "GET /status/" not in line]
            out.append(f"--- {log.stem} (last {tail} lines) ---\n" + "\n".join(lines[-tail:]))
        try:
            depth = {q: queue_state(q, vhost=self.vhost) for q in QUEUES}
            out.append(f"--- RabbitMQ (messages ready, consumers) ---\n{depth}")
        except Exception as exc:  # diagnostics only
            out.append(f"--- RabbitMQ: {exc!r}")
        return "\n".join(out)

    def stop(self) -> None:
        """Stop every process (SIGTERM, SIGKILL after 15 s)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()
        self.http.close()

    # HTTP --------------------------------------------------------------------

    def submit(self, body: dict) -> str:
        """``POST /search``; the new job's id (fails unless 202 and a new job)."""
        r = self.http.post("/search", json=body)
        if r.status_code != 202 or r.json()["duplicate_of_running"]:
            raise ServiceError(f"POST /search {body} -> {r.status_code} {r.text}")
        return r.json()["job_id"]

    def status(self, job_id: str) -> dict:
        r = self.http.get(f"/status/{job_id}")
        if r.status_code != 200:
            raise ServiceError(f"GET /status/{job_id} -> {r.status_code} {r.text}")
        return r.json()

    def wait_status(
        self,
        job_id: str,
        until: Callable[[dict], bool],
        *,
        timeout: float = 120.0,
        interval: float = 0.05,
        what: str = "",
    ) -> dict:
        """Poll ``/status`` until ``until(status)``; fails at a final state or after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if until(status):
                return status
            if status["state"] in FINAL or time.monotonic() > deadline:
                raise ServiceError(
                    f"job {job_id}: waited for {what or until} and got {status}\n{self.logs()}"
                )
            self.check_alive()
            time.sleep(interval)

    def wait_final(
        self,
        job_ids: Iterable[str],
        *,
        timeout: float = 120.0,
        interval: float = 0.25,
        on_poll: Callable[[], None] | None = None,
    ) -> dict[str, dict]:
        """Poll ``GET /jobs`` until every job is final; their last status (bounded).

        ``on_poll()``, if given, is called before each poll (to inject faults).
        """
        wanted = set(job_ids)
        deadline = time.monotonic() + timeout
        while True:
            if on_poll is not None:
                on_poll()
            r = self.http.get("/jobs", params={"limit": 500})
            if r.status_code != 200:
                raise ServiceError(f"GET /jobs -> {r.status_code} {r.text}\n{self.logs()}")
            seen = {j["job_id"]: j for j in r.json()["jobs"] if j["job_id"] in wanted}
            if len(seen) == len(wanted) and all(j["state"] in FINAL for j in seen.values()):
                return seen
            if time.monotonic() > deadline:
                states = Counter(j["state"] for j in seen.values())
                missing = len(wanted) - len(seen)
                raise ServiceError(
                    f"after {timeout} s: {dict(states)}, {missing} not listed\n{self.logs()}"
                )
            self.check_alive()
            time.sleep(interval)

    # database ----------------------------------------------------------------

    def db_job(self, job_id: str) -> Job:
        """The job's row, read now (detached)."""
        with session_factory(self.database_url)() as session:
            job = session.get(Job, job_id)
            if job is None:
                raise ServiceError(f"no job {job_id} in the database")
            session.expunge(job)
            return job

    def db_jobs(self) -> list[Job]:
        """Every job of the deployment (detached)."""
        with session_factory(self.database_url)() as session:
            jobs = list(session.scalars(select(Job)))
            session.expunge_all()
            return jobs

    def tracks(self, job_id: str) -> list[tuple[str, int]]:
        """The job's stored tracks as ``(designation, observations)``, sorted."""
        with session_factory(self.database_url)() as session:
            rows = session.scalars(
                select(TrackRecord)
                .where(TrackRecord.job_id == job_id)
                .options(selectinload(TrackRecord.observations))
            ).all()
            return sorted((t.designation, len(t.observations)) for t in rows)

    def duplicates(self, job_id: str) -> int:
        """Rows the job would not have if each result were stored once.

        Observations repeated within a track (same frame time), tracks
        repeated within the job (same motion and observations), and tracks
        beyond the count the detailed detector recorded.
        """
        with session_factory(self.database_url)() as session:
            job = session.get(Job, job_id)
            rows = session.scalars(
                select(TrackRecord)
                .where(TrackRecord.job_id == job_id)
                .options(selectinload(TrackRecord.observations))
            ).all()
            extra = 0
            keys = set()
            for t in rows:
                mjds = [round(o.mjd, 7) for o in t.observations]
                extra += len(mjds) - len(set(mjds))
                keys.add((round(t.rate_arcsec_per_hour, 3), round(t.position_angle_deg, 2), *mjds))
            extra += len(rows) - len(keys)
            recorded = (job.counts or {}).get("tracks") if job is not None else None
            if recorded is not None:
                extra += max(len(rows) - recorded, 0)
            return extra

    def stage_runs(self, job_id: str) -> Counter:
        """How many times each stage started for the job (from its events)."""
        with session_factory(self.database_url)() as session:
            messages = session.scalars(
                select(Event.message).where(Event.job_id == job_id, Event.kind == "stage")
            ).all()
        return Counter(m.removesuffix(" started") for m in messages if m.endswith(" started"))

    def events(self, job_id: str) -> list[tuple[str, str]]:
        """The job's events as ``(kind, message)``, in order."""
        with session_factory(self.database_url)() as session:
            rows = session.execute(
                select(Event.kind, Event.message).where(Event.job_id == job_id).order_by(Event.id)
            ).all()
        return [(kind, message) for kind, message in rows]


# --------------------------------------------------------------------------- load


@dataclass
class LoadRun:
    """What a load run saw: per job its final state, end-to-end seconds and re-runs."""

    submitted: int
    job_ids: list[str]
    rejected: list[str]
    final: dict[str, dict]
    wall_s: float
    e2e_s: dict[str, float] = field(default_factory=dict)
    faults: int = 0
    duplicates: int = 0
    extra_jobs: int = 0
    stage_reruns: int = 0

    @property
    def done(self) -> int:
        return sum(1 for s in self.final.values() if s["state"] == "done")

    @property
    def lost(self) -> int:
        """Submitted searches that did not end done (refused, failed, or never finished)."""
        return self.submitted - self.done

    @property
    def duplicate_ids(self) -> int:
        return len(self.job_ids) - len(set(self.job_ids))

    def percentile(self, q: float) -> float:
        values = sorted(self.e2e_s.values())
        if not values:
            return float("nan")
        k = (len(values) - 1) * q / 100
        lo, hi = int(k), min(int(k) + 1, len(values) - 1)
        return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _seconds(a: dt.datetime, b: dt.datetime) -> float:
    return (b.replace(tzinfo=None) - a.replace(tzinfo=None)).total_seconds()


def run_load(
    deployment: Deployment,
    bodies: Sequence[dict],
    *,
    timeout: float,
    clients: int = 16,
    inject: Callable[[float], int] | None = None,
) -> LoadRun:
    """Submit every search at once (``clients`` threads), wait for all, and audit the database.

    ``inject(seconds_since_submission)``, if given, is called between polls
    and returns how many faults it injected then.
    """

    def post(body: dict) -> str | Exception:
        try:
            return deployment.submit(body)
        except Exception as exc:
            return exc

    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(post, bodies))
    job_ids = [a for a in answers if isinstance(a, str)]
    rejected = [str(a).splitlines()[0] for a in answers if not isinstance(a, str)]
    faults = 0

    def on_poll() -> None:
        nonlocal faults
        if inject is not None:
            faults += inject(time.monotonic() - t0)

    final = deployment.wait_final(job_ids, timeout=timeout, on_poll=on_poll) if job_ids else {}
    run = LoadRun(len(bodies), job_ids, rejected, final, time.monotonic() - t0, faults=faults)
    rows = {job.id: job for job in deployment.db_jobs()}
    run.extra_jobs = len(rows) - len(set(job_ids))
    for job_id in set(job_ids):
        job = rows[job_id]
        if job.state == "done":
            run.e2e_s[job_id] = _seconds(job.created_at, job.updated_at)
        run.duplicates += deployment.duplicates(job_id)
        run.stage_reruns += sum(n - 1 for n in deployment.stage_runs(job_id).values())
    return run


def summary_line(name: str, *, faults: int, lost: int, duplicates: int, **extra) -> str:
    """One line of what a reliability test did; printed and kept for the run's summary."""
    more = "".join(f", {k.replace('_', ' ')}={v}" for k, v in extra.items())
    line = f"{name}: faults injected={faults}, jobs lost={lost}, duplicates={duplicates}{more}"
    SUMMARIES.append(line)
    print(line)
    return line
