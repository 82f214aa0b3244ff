"""Fixtures for the source tests: the in-process broker, a fresh data folder, a fake archive.

``app.broker`` picks its broker when first imported, so the in-process
``StubBroker`` is selected here before any ``app`` module is imported.
Every test gets its own ``DATA_DIR`` (with SQLite in it), the survey URLs
pointed at a local `Archive` server, fast retries, and a fresh actor
context. Nothing here touches the network.
"""

from __future__ import annotations

import os

os.environ["ASTROHUNTER_BROKER"] = "memory"

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import app.actors
from app.config import Settings, get_settings

from .archive import Archive

#: Variables of the outer environment that would point the services elsewhere.
SERVICE_ENV = (
    "DATA_DIR",
    "DATABASE_URL",
    "REDIS_HOST",
    "RABBITMQ_HOST",
    "ASTROHUNTER_LOCAL_ROOTS",
    "ASTROHUNTER_DEVICE",
    "MIN_DISK_SPACE_GB",
    "ASTROHUNTER_API_KEY",
)


def closed_port() -> int:
    """A TCP port nobody listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def archive() -> Iterator[Archive]:
    """A fake MAST + IRSA on 127.0.0.1 (port 0), stopped after the test."""
    server = Archive().start()
    yield server
    server.stop()


@pytest.fixture
def make_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive: Archive
) -> Iterator[Callable[..., Settings]]:
    """``make_env(**vars)``: settings for a clean deployment in ``tmp_path`` using ``archive``."""

    def make(**variables: str) -> Settings:
        for name in SERVICE_ENV:
            monkeypatch.delenv(name, raising=False)
        values = {
            "DATA_DIR": str(tmp_path / "data"),
            "MIN_DISK_SPACE_GB": "0",
            "ASTROHUNTER_LOCAL_ROOTS": str(tmp_path / "local"),
            "ASTROHUNTER_TESSCUT_URL": f"{archive.url}/tesscut/api/v0.1/",
            "ASTROHUNTER_IRSA_URL": f"{archive.url}/ibe/",
            "ASTROHUNTER_DOWNLOAD_RETRIES": "3",
            "ASTROHUNTER_DOWNLOAD_BACKOFF": "0.01",
            "ASTROHUNTER_DOWNLOAD_TIMEOUT": "10",
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
    return make_env()
