"""What a new user hit, each over real HTTP against the embedded server (issue 10).

The embedded deployment (`app.embedded`) is the real app on a real socket with
the in-process broker, so these are the requests a user's client makes.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app import pipeline
from app.api.main import MAX_BODY_BYTES
from app.db import crud
from app.db.base import get_engine, session_factory
from app.db.models import Event, Job
from app.embedded import embedded_server

from ..conftest import check_contract
from .conftest import FIELD, FINAL, POSTGRES_URL, port_open

#: A small simulated field with the faint search on: every engine stage reports progress.
FAINT_FIELD = {**FIELD, "faint": True}


@pytest.fixture
def server(settings, stub_broker) -> Iterator[httpx.Client]:
    """An HTTP client of the embedded server (fresh SQLite, in-process broker)."""
    with embedded_server(threads=2) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def _follow(http: httpx.Client, job_id: str, timeout: float = 120.0) -> list[dict]:
    """Every status seen while polling the job to its end (as fast as the server answers)."""
    seen, deadline = [], time.monotonic() + timeout
    while True:
        status = http.get(f"/status/{job_id}").raise_for_status().json()
        seen.append(status)
        if status["state"] in FINAL:
            return seen
        assert time.monotonic() < deadline, f"job still {status['state']}"
        time.sleep(0.02)


# --------------------------------------------------------------------------- 1, 11: bad numbers


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("field", ["ra", "dec", "rate_max", "radius_arcmin"])
def test_non_finite_numbers_are_422_naming_the_field(server, field, literal):
    body = {"ra": "83.8", "dec": "-5.4", "rate_max": "150", "radius_arcmin": "6"}
    body[field] = literal
    raw = "{" + ", ".join(f'"{k}": {v}' for k, v in body.items()) + "}"
    r = server.post("/search", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", field]]


@pytest.mark.parametrize(
    ("field", "value"),
    [("ra", True), ("dec", "5"), ("faint", "yes"), ("faint", 1), ("seed", 1.5), ("rate_min", None)],
)
def test_request_types_are_strict(server, field, value):
    r = server.post("/search", json={"ra": 10.0, "dec": 5.0, field: value})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start", "0001-01-01T00:00:00+23:59"),
        ("end", "9999-12-31T23:59:59-23:59"),
        ("start", "1066-10-14T09:00:00"),
        ("path", "/data/night\x001"),
        ("path", "/data/night\n1"),
    ],
)
def test_unusable_windows_and_paths_are_422_not_503(server, field, value):
    body = {"ra": 10.0, "dec": 5.0, "source": "local", field: value}
    r = server.post("/search", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == field


# --------------------------------------------------------------------------- 2: body size


def test_a_chunked_body_over_the_limit_is_413_like_a_declared_one(server):
    big = b'{"ra": 1, "dec": 2, "path": "' + b"a" * MAX_BODY_BYTES + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    streamed = server.post(
        "/search", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers  # sent chunked
    declared = server.post("/search", content=big, headers={"content-type": "application/json"})
    assert streamed.status_code == declared.status_code == 413, (streamed.text, declared.text)
    small = server.post("/search", content=chunks_of(b'{"ra": 1, "dec": 2, "source": "nope"}'))
    assert small.status_code == 422  # a small chunked body still reaches the app


def chunks_of(data: bytes) -> Iterator[bytes]:
    yield from (data[i : i + 7] for i in range(0, len(data), 7))


# --------------------------------------------------------------------------- 3: percent


def test_percent_never_falls_while_polling_a_real_job(server):
    job_id = server.post("/search", json=FAINT_FIELD).raise_for_status().json()["job_id"]
    seen = _follow(server, job_id)
    assert seen[-1]["state"] == "done", seen[-1]
    percents = [s["percent"] for s in seen]
    falls = [(a, b) for a, b in itertools.pairwise(percents) if b < a]
    assert falls == [], f"percent fell: {falls}"
    assert len(set(percents)) >= 5 and percents[-1] == 100.0
    assert {"fast_detect", "detailed_detect"} <= {s["state"] for s in seen}


def test_every_engine_stage_has_a_share_of_its_service_stage(settings):
    """A stage the engine reports and the progress map does not know is an error, not a step back."""
    from detectors.config import SearchConfig
    from detectors.search import detailed_detect, fast_detect

    from ..detectors.helpers import make_sequence

    frames, _ = make_sequence(seed=3, shape=(160, 160), n=6)
    reported: dict[str, set[str]] = {"fast": set(), "detailed": set()}
    config = SearchConfig(faint=True, rate_min=5, rate_max=60)
    fast = fast_detect(frames, config=config, progress=lambda s, d, t: reported["fast"].add(s))
    detailed_detect(fast, config=config, progress=lambda s, d, t: reported["detailed"].add(s))
    # The pipeline reports its own last step of the detailed stage (identification).
    reported["detailed"].add("identify")
    for stage, names in reported.items():
        assert names == set(pipeline.ENGINE_STAGES[stage]), (stage, names)
        assert sum(pipeline.ENGINE_STAGES[stage].values()) == pytest.approx(1.0)


# --------------------------------------------------------------------------- 4: atomic events


def test_state_changes_and_their_events_are_committed_together(settings):
    """After every commit, a job that is failed or cancelled has its event: never one alone."""
    sessions = session_factory(settings.db_url)
    engine = get_engine(settings.db_url)
    seen: list[tuple[str, int]] = []

    def look(_session) -> None:
        with Session(engine) as reader:  # another connection: what any reader sees now
            for job in reader.scalars(select(Job)):
                kinds = reader.scalar(
                    select(func.count()).where(Event.job_id == job.id, Event.kind == job.state)
                )
                seen.append((job.state, int(kinds or 0)))

    with sessions() as session:
        failing, _ = crud.create_or_get_job(
            session=session, ra=1.0, dec=2.0, source="simulated", params={}, simulated=True
        )
        cancelling, _ = crud.create_or_get_job(
            session=session, ra=3.0, dec=4.0, source="simulated", params={}, simulated=True
        )
    event.listen(Session, "after_commit", look)
    try:
        pipeline.fail(pipeline.Context(settings), failing.id, "bad frame x.fits")
        with sessions() as session:
            crud.update_if_active(
                session=session,
                job_id=cancelling.id,
                state="cancelled",
                event=("cancelled", "cancelled by request"),
            )
    finally:
        event.remove(Session, "after_commit", look)
    finals = [(state, n) for state, n in seen if state in ("failed", "cancelled")]
    assert finals and all(n == 1 for _, n in finals), seen


# --------------------------------------------------------------------------- 9: DELETE


def test_delete_cancels_a_running_job_then_removes_it_and_every_endpoint_agrees(server, settings):
    job_id = server.post("/search", json={**FIELD, "seed": 7}).raise_for_status().json()["job_id"]
    cancelled = server.delete(f"/jobs/{job_id}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    for path in ("tracks", "report.mpc", "images"):
        r = server.get(f"/jobs/{job_id}/{path}")
        assert r.status_code == 409 and "cancelled" in r.text, (path, r.status_code, r.text)
    assert server.delete(f"/jobs/{job_id}").status_code == 204
    for path in (f"/status/{job_id}", f"/jobs/{job_id}/tracks", f"/jobs/{job_id}/report.mpc"):
        assert server.get(path).status_code == 404, path


def test_delete_removes_a_finished_job_and_its_files(server, settings):
    job_id = server.post("/search", json=FIELD).raise_for_status().json()["job_id"]
    assert _follow(server, job_id)[-1]["state"] == "done"
    check_contract(server.get(f"/jobs/{job_id}/tracks").raise_for_status().json())
    images = server.get(f"/jobs/{job_id}/images").raise_for_status().json()
    assert "overview.png" in images and len(images) >= 2
    png = server.get(f"/jobs/{job_id}/images/{images[0]}")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    folder = settings.job_dir(job_id)
    assert (folder / "results" / "report.mpc").is_file()
    assert server.delete(f"/jobs/{job_id}").status_code == 204
    assert not folder.exists()
    assert server.get(f"/status/{job_id}").status_code == 404
    assert server.get("/jobs").json()["total"] == 0
    assert server.delete(f"/jobs/{job_id}").status_code == 404


# --------------------------------------------------------------------------- 11: fuzzed ids


@pytest.mark.parametrize(
    "job_id", ["%00", "abc%00def", "..%2F..%2Fetc", "a" * 500, "0" * 31 + "g", "%C3%A9"]
)
def test_malformed_job_ids_are_404_before_any_query(server, job_id):
    for method, path in (
        ("GET", f"/status/{job_id}"),
        ("GET", f"/jobs/{job_id}/tracks"),
        ("GET", f"/jobs/{job_id}/report.mpc"),
        ("DELETE", f"/jobs/{job_id}"),
    ):
        assert server.request(method, path).status_code == 404, (method, path)


def test_malformed_job_ids_on_postgresql_are_404(make_env, stub_broker):
    """psycopg refuses a NUL byte in a query parameter: the id must never reach it."""
    from ..conftest import need

    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    make_env(DATABASE_URL=POSTGRES_URL)
    with embedded_server() as url, httpx.Client(base_url=url) as http:
        for path in ("/status/%00", "/jobs/%00/tracks", "/jobs/x%00y/report.mpc"):
            assert http.get(path).status_code == 404, path
        assert http.delete("/jobs/%00").status_code == 404


def test_a_non_ascii_api_key_is_401_not_500(make_env, stub_broker):
    make_env(ASTROHUNTER_API_KEY="s3cret")
    with embedded_server() as url, httpx.Client(base_url=url) as http:
        for key in ("s3crét".encode(), b"\xff\xfe", "密钥".encode()):
            r = http.post("/search", json=FIELD, headers={"X-API-Key": key})
            assert r.status_code == 401, (key, r.status_code, r.text)
        assert http.post("/search", json=FIELD, headers={"X-API-Key": "s3cret"}).status_code == 202


def test_a_post_refused_for_the_broker_leaves_no_job_behind(settings, stub_broker):
    """503 naming the broker, and neither a failed job in the list nor a blocked repeat."""
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    def down(job_id: str) -> None:
        raise ConnectionError("connection refused by 127.0.0.1:5672")

    with TestClient(create_app(dispatch=down)) as http:
        for _ in range(3):
            r = http.post("/search", json=FIELD)
            assert r.status_code == 503 and "broker unavailable" in r.json()["detail"], r.text
        assert http.get("/jobs").json()["total"] == 0


def test_the_embedded_search_talks_to_a_real_socket(settings, stub_broker):
    with embedded_server() as url:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    assert os.environ["ASTROHUNTER_BROKER"] == "memory"
