"""Security basics: an API key guards writes, request bodies are bounded, paths are confined."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("ASTROHUNTER_BROKER", "memory")

from fastapi.testclient import TestClient

from app.api.main import MAX_BODY_BYTES, create_app
from app.config import get_settings


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTROHUNTER_API_KEY", "s3cret")
    monkeypatch.setenv("ASTROHUNTER_LOCAL_ROOTS", str(tmp_path / "allowed"))
    (tmp_path / "allowed").mkdir()
    get_settings.cache_clear()
    yield TestClient(create_app(dispatch=lambda job_id: None))
    get_settings.cache_clear()


def test_writes_need_the_api_key_and_reads_do_not(client):
    assert client.post("/search", json={"ra": 1, "dec": 2}).status_code == 401
    assert (
        client.post("/search", json={"ra": 1, "dec": 2}, headers={"X-API-Key": "nope"}).status_code
        == 401
    )
    ok = client.post("/search", json={"ra": 1, "dec": 2}, headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 202
    job = ok.json()["job_id"]
    assert client.get(f"/status/{job}").status_code == 200
    assert client.delete(f"/jobs/{job}").status_code == 401
    assert (
        client.delete(f"/jobs/{job}", headers={"X-API-Key": "s3cret"}).json()["state"]
        == "cancelled"
    )


def test_oversized_bodies_are_refused(client):
    big = b'{"ra": 1, "dec": 2, "path": "' + b"a" * MAX_BODY_BYTES + b'"}'
    r = client.post(
        "/search", content=big, headers={"X-API-Key": "s3cret", "content-type": "application/json"}
    )
    assert r.status_code == 413


@pytest.mark.parametrize("path", ["/etc", "{root}/../outside", "{root}/../../etc/passwd", "/"])
def test_local_source_cannot_leave_its_roots(client, tmp_path, path):
    body = {"ra": 1, "dec": 2, "source": "local", "path": path.format(root=tmp_path / "allowed")}
    r = client.post("/search", json=body, headers={"X-API-Key": "s3cret"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "path"


def test_storage_reports_usage_and_free_space(client):
    body = client.get("/storage").json()
    assert body["free_bytes"] > 0 and set(body["used_bytes"]) == {"raw", "work", "results"}
    assert body["retention_days"] == 7
