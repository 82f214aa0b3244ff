"""Fixtures for the service tests: the in-process broker, a fresh data folder per test.

``app.broker`` picks its broker when first imported, so this module selects
the in-process ``StubBroker`` before any ``app`` module is imported. Every
test gets its own ``DATA_DIR`` and SQLite file (engines are cached per URL),
cleared settings and a fresh actor context. Tests against the real RabbitMQ
and Redis start the services as subprocesses instead (``test_integration``).
"""

from __future__ import annotations

import os

os.environ["ASTROHUNTER_BROKER"] = "memory"

import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dramatiq import Worker

import app.actors
import app.actors.all  # declares every queue on the broker
from app.broker import broker as _broker
from app.config import Settings, get_settings
from app.db.base import session_factory
from app.db.models import Job
from detectors.score import score_field

from ..conftest import need

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: A small simulated field (200 x 200 px, 8 frames) whose three movers (SNR 10-16) are all found.
FIELD = {"ra": 10.0, "dec": 5.0, "radius_arcmin": 2.0, "seed": 1, "source": "simulated"}
#: Small simulated fields (ra, dec, seed) on which every mover with SNR >= 8 is found and
#: nothing false is reported. Tests on shared services pick one at random so that runs
#: at the same time do not submit identical searches. (On about one random field in ten
#: the engine misses a slow mover of SNR 8-12 near the 1 "/h lower rate limit.)
VETTED_FIELDS = (
    (116.256, -48.881, 682555),
    (17.335, 44.978, 98703),
    (80.143, 17.841, 993745),
    (22.208, 11.976, 51999),
    (350.476, -63.478, 900170),
    (47.81, -11.321, 566951),
    (244.839, -55.572, 598952),
    (229.37, -17.864, 574352),
    (255.648, 9.012, 649079),
    (73.939, 25.256, 448364),
    (279.025, -4.816, 968299),
    (162.693, -28.033, 832968),
    (64.536, 39.176, 85832),
    (206.218, 3.528, 917649),
    (123.308, -7.163, 638540),
    (59.221, -22.112, 978605),
    (175.538, -64.511, 700676),
    (27.866, 8.131, 827426),
    (314.297, -26.075, 729071),
    (125.714, -0.466, 835602),
    (96.908, 27.586, 68158),
    (21.78, 28.209, 678564),
    (207.483, 25.373, 467289),
)
FINAL = ("done", "failed", "cancelled")
#: Variables of the outer environment that would point the services elsewhere.
SERVICE_ENV = (
    "DATA_DIR",
    "DATABASE_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "RABBITMQ_HOST",
    "RABBITMQ_PORT",
    "RABBITMQ_VHOST",
    "ASTROHUNTER_LOCAL_ROOTS",
    "ASTROHUNTER_DEVICE",
)


def random_field(**extra) -> dict:
    """A ``POST /search`` body for one of `VETTED_FIELDS`, picked at random."""
    ra, dec, seed = random.choice(VETTED_FIELDS)
    return {
        "ra": ra,
        "dec": dec,
        "radius_arcmin": 2.0,
        "seed": seed,
        "source": "simulated",
        **extra,
    }


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nobody listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def queue_state(queue: str, *, vhost: str = "/") -> tuple[int, int]:
    """(messages ready, consumers) of a queue on the RabbitMQ at 127.0.0.1:5672."""
    import pika

    params = pika.ConnectionParameters(
        "127.0.0.1", 5672, vhost, pika.PlainCredentials("guest", "guest"), socket_timeout=5
    )
    with pika.BlockingConnection(params) as connection:
        ok = connection.channel().queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count


def _rabbitmqctl(*args: str) -> bool:
    try:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextmanager
def rabbitmq_vhost() -> Iterator[tuple[str, str]]:
    """``(RABBITMQ_HOST, RABBITMQ_VHOST)`` of a private RabbitMQ vhost, deleted afterwards.

    The queue names are fixed, so deployments sharing a vhost take each
    other's messages, and a worker drops a job its database does not know.
    Without ``rabbitmqctl`` the default vhost is used, provided no other
    deployment consumes from it.
    """
    vhost = f"astrohunter-test-{uuid.uuid4().hex[:12]}"
    if shutil.which("rabbitmqctl") and _rabbitmqctl("add_vhost", vhost):
        try:
            assert _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            yield "127.0.0.1", vhost
        finally:
            _rabbitmqctl("delete_vhost", vhost)
        return
    import pika

    busy = {}
    for queue in ("download", "data", "fast_detect", "detailed_detect"):
        try:
            busy[queue] = queue_state(queue)[1]
        except pika.exceptions.ChannelClosedByBroker:  # not declared yet: nobody consumes
            busy[queue] = 0
    need(
        not any(busy.values()),
        f"a RabbitMQ with no other AstroHunter workers (consumers per queue: {busy}; "
        "install rabbitmqctl so the tests can use a private vhost)",
    )
    yield "127.0.0.1", "/"


@pytest.fixture
def make_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """``make_env(**vars)``: a clean service environment in ``tmp_path``, settings re-read."""

    def make(**variables: str) -> Settings:
        for name in SERVICE_ENV:
            monkeypatch.delenv(name, raising=False)
        values = {
            "DATA_DIR": str(tmp_path / "data"),
            "MIN_DISK_SPACE_GB": "0",
            "ASTROHUNTER_LOCAL_ROOTS": str(tmp_path / "local"),
            **variables,
        }
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        monkeypatch.setattr(app.actors, "_context", None)
        return get_settings()

    yield make
    get_settings.cache_clear()


@pytest.fixture
def settings(make_env) -> Settings:
    """Settings of a fresh SQLite deployment, no Redis, in-process broker."""
    return make_env()


@pytest.fixture
def stub_broker():
    """The in-process broker (a Dramatiq ``StubBroker``), emptied around the test."""
    _broker.flush_all()
    yield _broker
    _broker.flush_all()


@pytest.fixture
def worker(stub_broker) -> Iterator[Worker]:
    """A Dramatiq worker with two threads on the in-process broker."""
    w = Worker(stub_broker, worker_threads=2, worker_timeout=50)
    w.start()
    yield w
    w.stop()


def wait_for_job(settings: Settings, job_id: str, *, states=FINAL, timeout: float = 60.0) -> Job:
    """Poll the database until the job is in one of ``states`` (fails after ``timeout`` s)."""
    sessions = session_factory(settings.db_url)
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            job = session.get(Job, job_id)
            if job is not None and job.state in states:
                return job
        if time.monotonic() > deadline:
            state = None if job is None else job.state
            pytest.fail(f"job {job_id} still {state} after {timeout} s (wanted {states})")
        time.sleep(0.05)


def check_recovery(contract: dict, truth: dict) -> None:
    """Every injected mover with SNR >= 8 is recovered, and no track is false."""
    score = score_field(contract, truth)
    missed = [(o.id, round(o.snr, 1)) for o in score.objects if o.snr >= 8 and not o.recovered]
    assert missed == [], f"movers with SNR >= 8 not recovered: {missed}"
    assert score.false_tracks == 0, f"false tracks: {score.track_matches}"


def check_mpc(text: str, contract: dict) -> None:
    """An MPC 1992 report: 80-column lines, labelled simulated, one line per observation."""
    lines = text.splitlines()
    assert lines[0].startswith("COM SIMULATED"), lines[0]
    assert [line for line in lines if len(line) != 80] == []
    observations = [line for line in lines if line[:3] not in ("COM", "COD", "OBS", "MEA", "TEL")]
    assert len(observations) == sum(len(t["observations"]) for t in contract["tracks"])
    ids = {t["id"] for t in contract["tracks"]}
    assert {line[5:12].strip() for line in observations} == ids
