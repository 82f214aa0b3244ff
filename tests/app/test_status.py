"""Live status in Redis, and the API's fall-back to the database when Redis is gone."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.config import Settings
from app.status import KEY, StatusBoard

from ..conftest import need
from .conftest import FIELD, free_port, port_open


@pytest.fixture
def redis_board():
    need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    board = StatusBoard(Settings(REDIS_HOST="127.0.0.1"))
    assert board.ping()
    job_id = f"test-{uuid.uuid4().hex}"
    yield board, job_id
    board._client.delete(KEY.format(job_id))


def test_status_round_trip_through_redis(redis_board):
    board, job_id = redis_board
    assert board.get(job_id) is None
    board.set(job_id, state="fast_detect", percent=42.5, message="align 3/8")
    board.set(job_id, percent=50.0)  # a tick merges into what is there
    assert board.get(job_id) == {"state": "fast_detect", "percent": "50.0", "message": "align 3/8"}
    assert 0 < board._client.ttl(KEY.format(job_id)) <= 86400


def test_lock_is_held_once_and_released_by_its_holder(redis_board):
    board, job_id = redis_board
    name = f"{job_id}-lock"
    token = board.acquire(name, ttl_s=30)
    assert token is not None
    assert board.acquire(name, ttl_s=30) is None
    board.release(name, "not-the-token")
    assert board.acquire(name, ttl_s=30) is None
    board.release(name, token)
    again = board.acquire(name, ttl_s=30)
    assert again is not None
    board.release(name, again)


def _timed_get(port: int) -> tuple[dict | None, float]:
    board = StatusBoard(Settings(REDIS_HOST="127.0.0.1", REDIS_PORT=port))
    started = time.monotonic()
    live = board.get("some-job")
    return live, time.monotonic() - started


def test_unreachable_redis_answers_quickly():
    port = free_port()
    # Three fresh boards at once: each must give up within 3 s.
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(_timed_get, [port] * 3))
    assert all(live is None for live, _ in results)
    seconds = [round(s, 2) for _, s in results]
    assert max(seconds) < 3.0, f"get() took {seconds} s with Redis down"


def test_status_comes_from_the_database_when_redis_is_down(make_env, stub_broker):
    settings = make_env(REDIS_HOST="127.0.0.1", REDIS_PORT=str(free_port()))
    assert settings.redis_host == "127.0.0.1"
    with TestClient(create_app(dispatch=lambda job_id: None)) as http:
        r = http.post("/search", json=FIELD)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]  # the live "queued" was dropped, and Redis marked down
        started = time.monotonic()
        r = http.get(f"/status/{job_id}")
        assert time.monotonic() - started < 1.0, "Redis is not retried during its back-off"
        assert r.status_code == 200
        status = r.json()
        assert status["state"] == "queued" and status["live"] is False

        # Searches still run without Redis: /health says so, but stays healthy.
        health = http.get("/health")
        assert health.status_code == 200
        assert health.json()["checks"]["redis"]["ok"] is False
