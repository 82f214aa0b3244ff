"""Fixtures of the reliability tests: deployments on the real RabbitMQ and Redis.

The tests break things for real: they SIGKILL workers and the API, stop
RabbitMQ's broker (``rabbitmqctl stop_app``) and shut Redis down. Every such
fault is undone in a ``finally`` (see :mod:`.harness`), and a guard around
each test starts RabbitMQ and Redis again if either still does not answer,
so the next test (and CI, on the same machine) finds them as they were.
Every deployment gets its own RabbitMQ vhost, data folder and SQLite file.

They are opt-in, since stopping a developer's own RabbitMQ and Redis would
be a surprise: they run only with ``ASTROHUNTER_RELIABILITY=1`` (which
``.ci/run`` sets) and otherwise skip saying so. They carry the
``reliability`` marker, so ``-m "not reliability"`` leaves them out too.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ..app.conftest import make_env, port_open, rabbitmq_vhost
from ..conftest import need
from .harness import (
    SUMMARIES,
    Deployment,
    rabbitmq_answers,
    redis_answers,
    restore_services,
)

__all__ = ["field", "make_env"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability: breaks real services (workers, API, RabbitMQ, Redis) and checks recovery",
    )


#: Set to 1 to run the tests that stop and restart the local RabbitMQ and Redis.
OPT_IN = "ASTROHUNTER_RELIABILITY"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(OPT_IN) == "1":
        return
    skip = pytest.mark.skip(
        reason=f"reliability tests stop and restart the local RabbitMQ and Redis; "
        f"set {OPT_IN}=1 to run them"
    )
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter) -> None:
    if SUMMARIES:
        terminalreporter.section("reliability: faults injected, jobs lost, duplicates")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


def field(radius_arcmin: float = 2.0, *, faint: bool = False, **extra) -> dict:
    """A ``POST /search`` body of a small simulated field, unique by its random seed."""
    return {
        "ra": round(random.uniform(0.0, 359.0), 4),
        "dec": round(random.uniform(-60.0, 60.0), 4),
        "radius_arcmin": radius_arcmin,
        "source": "simulated",
        "faint": faint,
        "seed": random.randrange(1, 2**31),
        **extra,
    }


def need_services() -> None:
    """RabbitMQ and Redis answering on 127.0.0.1, and the tools to stop and start them."""
    need(port_open("127.0.0.1", 5672) and rabbitmq_answers(), "RabbitMQ at 127.0.0.1:5672")
    need(redis_answers(), "Redis at 127.0.0.1:6379")
    need(shutil.which("rabbitmqctl") is not None, "rabbitmqctl (vhosts, stop_app/start_app)")
    need(
        shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None,
        "redis-server and redis-cli (to stop and start Redis)",
    )


@pytest.fixture(autouse=True)
def _services_answer_afterwards() -> Iterator[None]:
    """Whatever the test did, RabbitMQ and Redis answer again when it ends."""
    yield
    restored = restore_services()
    if restored:
        print(f"restored after the test: {', '.join(restored)}")


def _deployments(root: Path) -> Iterator[Callable[..., Deployment]]:
    with ExitStack() as stack:

        def make(name: str = "deployment", **kwargs) -> Deployment:
            _, vhost = stack.enter_context(rabbitmq_vhost())
            deployment = Deployment(root / name, vhost, **kwargs)
            stack.callback(deployment.stop)
            return deployment

        yield make


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """``deploy(name, env=...)``: a deployment in a private vhost, stopped after the test."""
    need_services()
    yield from _deployments(tmp_path)


@pytest.fixture(scope="module")
def deploy_module(tmp_path_factory) -> Iterator[Callable[..., Deployment]]:
    """As `deploy`, shared by the tests of a module."""
    need_services()
    yield from _deployments(tmp_path_factory.mktemp("reliability"))
