"""The HTTP API as a client sees it: FastAPI's TestClient on ``create_app()``.

Searches run for real on the in-process broker with a started ``Worker``
(SQLite by default, PostgreSQL when it is up). Results are checked against
the shared tracks contract and the simulator's truth; every bad input must
be refused with 422 naming the field.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app

from ..conftest import check_contract, need
from .conftest import (
    FIELD,
    FINAL,
    POSTGRES_URL,
    check_mpc,
    check_recovery,
    port_open,
    random_field,
)

STAGE_TIMINGS = {"downloading", "ingesting", "fast_detect", "detailed_detect"}


@pytest.fixture
def client(settings, worker):
    """The API with the in-process broker and a worker serving every queue."""
    with TestClient(create_app()) as http:
        yield http


@pytest.fixture
def idle_client(settings, stub_broker):
    """The API whose jobs are never started (they stay queued)."""
    with TestClient(create_app(dispatch=lambda job_id: None)) as http:
        yield http


def follow(http: TestClient, job_id: str, *, timeout: float = 60.0) -> dict:
    """Poll ``/status`` until the job ends; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        r = http.get(f"/status/{job_id}")
        assert r.status_code == 200, r.text
        status = r.json()
        assert 0.0 <= status["percent"] <= 100.0
        if status["state"] in FINAL:
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status['state']}"
        time.sleep(0.1)


def check_finished_search(http: TestClient, settings, body: dict) -> str:
    """Submit ``body``, follow it to ``done`` and check status, tracks and report."""
    r = http.post("/search", json=body)
    assert r.status_code == 202, r.text
    accepted = r.json()
    job_id = accepted["job_id"]
    assert accepted["duplicate_of_running"] is False
    assert accepted["status_url"].endswith(f"/status/{job_id}")
    assert r.headers["location"] == accepted["status_url"]

    status = follow(http, job_id)
    assert status["state"] == "done", status["error"]
    assert status["percent"] == 100.0
    assert status["simulated"] is True and status["error"] is None
    assert status["counts"]["frames"] == 8
    assert set(status["timings_s"]) == STAGE_TIMINGS
    assert all(s >= 0 for s in status["timings_s"].values())

    r = http.get(f"/jobs/{job_id}/tracks")
    assert r.status_code == 200
    contract = r.json()
    check_contract(contract)
    assert contract["run"]["simulated"] is True and contract["run"]["state"] == "done"
    assert contract["field"]["frames"] == 8
    assert len(contract["tracks"]) == status["counts"]["tracks"]
    check_recovery(contract, json.loads((settings.job_dir(job_id) / "truth.json").read_text()))

    r = http.get(f"/jobs/{job_id}/report.mpc")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    check_mpc(r.text, contract)
    return job_id


def test_search_runs_to_done_with_tracks_and_report(client, settings):
    check_finished_search(client, settings, FIELD)


def test_search_on_postgresql(make_env, worker):
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    settings = make_env(DATABASE_URL=POSTGRES_URL)
    with TestClient(create_app()) as http:
        job_id = check_finished_search(http, settings, random_field())
        listed = http.get("/jobs", params={"state": "done", "limit": 100}).json()
        assert job_id in {j["job_id"] for j in listed["jobs"]}


def test_jobs_are_listed_newest_first_a_page_at_a_time(idle_client):
    ids = []
    for seed in range(5):
        r = idle_client.post("/search", json={**FIELD, "seed": seed})
        ids.append(r.json()["job_id"])
    cancelled = idle_client.delete(f"/jobs/{ids[0]}")
    assert cancelled.json()["state"] == "cancelled"

    page = idle_client.get("/jobs", params={"limit": 2}).json()
    assert page["total"] == 5 and page["offset"] == 0 and page["limit"] == 2
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:2]
    page = idle_client.get("/jobs", params={"limit": 2, "offset": 4}).json()
    assert [j["job_id"] for j in page["jobs"]] == [ids[0]]

    queued = idle_client.get("/jobs", params={"state": "queued"}).json()
    assert queued["total"] == 4 and {j["state"] for j in queued["jobs"]} == {"queued"}
    gone = idle_client.get("/jobs", params={"state": "cancelled"}).json()
    assert [j["job_id"] for j in gone["jobs"]] == [ids[0]]


@pytest.mark.parametrize(
    "params", [{"state": "sleeping"}, {"limit": 0}, {"limit": 501}, {"offset": -1}]
)
def test_bad_jobs_query_is_422_naming_it(idle_client, params):
    r = idle_client.get("/jobs", params=params)
    assert r.status_code == 422
    assert next(iter(params)) in json.dumps(r.json()["detail"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/status/{}"),
        ("get", "/jobs/{}/tracks"),
        ("get", "/jobs/{}/report.mpc"),
        ("delete", "/jobs/{}"),
    ],
)
def test_unknown_job_is_404(idle_client, method, path):
    r = idle_client.request(method.upper(), path.format("f" * 32))
    assert r.status_code == 404
    assert "f" * 32 in r.json()["detail"]


def test_delete_cancels_a_queued_job(idle_client):
    job_id = idle_client.post("/search", json=FIELD).json()["job_id"]
    r = idle_client.delete(f"/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert idle_client.get(f"/status/{job_id}").json()["state"] == "cancelled"
    # No report for a job that did not finish; the identical search may run again.
    assert idle_client.get(f"/jobs/{job_id}/report.mpc").status_code == 409
    again = idle_client.post("/search", json=FIELD).json()
    assert again["job_id"] != job_id and again["duplicate_of_running"] is False


def test_identical_search_while_running_returns_the_running_job(idle_client):
    first = idle_client.post("/search", json=FIELD)
    second = idle_client.post("/search", json=FIELD)
    assert first.status_code == second.status_code == 202
    assert second.json()["job_id"] == first.json()["job_id"]
    assert first.json()["duplicate_of_running"] is False
    assert second.json()["duplicate_of_running"] is True
    other = idle_client.post("/search", json={**FIELD, "seed": 2}).json()
    assert other["job_id"] != first.json()["job_id"] and other["duplicate_of_running"] is False


BAD_BODIES = {
    "ra_360": ({**FIELD, "ra": 360}, "ra"),
    "ra_negative": ({**FIELD, "ra": -1}, "ra"),
    "dec_91": ({**FIELD, "dec": 91}, "dec"),
    "dec_-91": ({**FIELD, "dec": -91}, "dec"),
    "ra_missing": ({"dec": 5.0}, "ra"),
    "ra_not_a_number": ({**FIELD, "ra": "north"}, "ra"),
    "radius_zero": ({**FIELD, "radius_arcmin": 0}, "radius_arcmin"),
    "unknown_source": ({**FIELD, "source": "hubble"}, "source"),
    "local_without_path": ({**FIELD, "source": "local"}, "path"),
    "local_outside_roots": ({**FIELD, "source": "local", "path": "/etc"}, "path"),
    "local_escaping_roots": ({**FIELD, "source": "local", "path": "{root}/../x/*.fits"}, "path"),
    "rate_min_eq_max": ({**FIELD, "rate_min": 10, "rate_max": 10}, "rate_min"),
    "rate_min_gt_max": ({**FIELD, "rate_min": 50, "rate_max": 10}, "rate_min"),
    "start_eq_end": (
        {**FIELD, "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
        "start",
    ),
    "start_after_end": (
        {**FIELD, "start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"},
        "start",
    ),
    "extra_field": ({**FIELD, "telescope": "big"}, "telescope"),
}


@pytest.mark.parametrize(("body", "field"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_search_is_422_naming_the_field(idle_client, settings, body, field):
    if "path" in body:
        body = {**body, "path": body["path"].format(root=settings.local_roots[0])}
    r = idle_client.post("/search", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert field in json.dumps(detail), detail
    assert idle_client.get("/jobs").json()["total"] == 0, "a refused search must queue nothing"


def test_local_glob_cannot_reach_a_sibling_of_a_root(idle_client, settings):
    root = Path(settings.local_roots[0])
    root.mkdir(parents=True)
    outside = root.with_name(root.name + "_private")
    outside.mkdir()
    (outside / "secret.fits").write_text("private")
    r = idle_client.post("/search", json={**FIELD, "source": "local", "path": f"{root}*/*.fits"})
    assert r.status_code == 422, r.json()


def test_local_search_inside_roots_is_accepted(idle_client, settings):
    folder = Path(settings.local_roots[0]) / "night1"
    folder.mkdir(parents=True)
    empty = idle_client.post("/search", json={**FIELD, "source": "local", "path": str(folder)})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"][-1] == "path", empty.text
    (folder / "frame_001.fits").write_bytes(b"")  # read by the data service, not at submission
    r = idle_client.post("/search", json={**FIELD, "source": "local", "path": str(folder)})
    assert r.status_code == 202, r.text


def test_health_sources_and_docs(idle_client):
    r = idle_client.get("/health")
    assert r.status_code == 200, r.text
    health = r.json()
    assert health["ok"] is True
    assert set(health["checks"]) == {"broker", "redis", "database", "disk"}

    sources = {s["name"]: s for s in idle_client.get("/sources").json()}
    assert {"simulated", "local"} <= set(sources)
    assert sources["simulated"]["simulated"] is True and sources["local"]["simulated"] is False

    r = idle_client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in ("/search", "/status/{job_id}", "/jobs", "/jobs/{job_id}/tracks", "/health"):
        assert path in paths
    r = idle_client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
