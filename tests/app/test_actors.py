"""The stage actors on Dramatiq's in-process ``StubBroker``, worked by a real ``Worker``.

A search goes download -> ingest -> fast_detect -> detailed_detect. These
tests check what a deployment relies on: a job reaches ``done`` with its
tracks stored; a stage delivered twice leaves no duplicate files or tracks;
bad data fails the job once, naming the file, without retries; a transient
error is retried and the job still finishes; a cancelled job stops at the
next stage.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app import pipeline
from app.actors.data import ingest
from app.actors.detailed_detect import detailed_detect
from app.actors.download import download
from app.api.main import create_app
from app.db import crud
from app.db.base import session_factory
from app.db.models import Event, FileRecord, Observation, TrackRecord
from app.dispatch import Dispatcher
from app.schemas import SearchRequest
from app.service import submit_search
from app.status import StatusBoard

from .conftest import FIELD as _FIELD
from .conftest import wait_for_job

#: The small simulated field, without the (slow) faint search: these tests are about plumbing.
FIELD = {**_FIELD, "faint": False}


def _submit(settings, dispatch=download.send, **body) -> str:
    request = SearchRequest(**{**FIELD, **body})
    with session_factory(settings.db_url)() as session:
        job, created = submit_search(
            request,
            session=session,
            settings=settings,
            board=StatusBoard(settings),
            dispatch=Dispatcher(dispatch, timeout_s=settings.publish_timeout_s),
        )
    assert created
    return job.id


def _count(settings, model, job_id: str) -> int:
    """Rows of ``model`` (files, tracks or observations) belonging to the job."""
    query = select(func.count()).select_from(model)
    if model is Observation:
        query = query.join(TrackRecord).where(TrackRecord.job_id == job_id)
    else:
        query = query.where(model.job_id == job_id)
    with session_factory(settings.db_url)() as session:
        return int(session.scalar(query))


def _events(settings, job_id: str) -> list[tuple[str, str]]:
    with session_factory(settings.db_url)() as session:
        rows = session.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.id))
        return [(e.kind, e.message) for e in rows]


def _counting(monkeypatch, name: str, *, fail_first: int = 0, always: bool = False) -> list:
    """Wrap ``pipeline.<name>``; returns the list of calls (job ids) it saw."""
    real = getattr(pipeline, name)
    calls: list[str] = []

    def wrapper(ctx, job_id):
        calls.append(job_id)
        if always or len(calls) <= fail_first:
            raise RuntimeError(f"transient trouble in {name} (call {len(calls)})")
        return real(ctx, job_id)

    monkeypatch.setattr(pipeline, name, wrapper)
    return calls


def test_simulated_search_goes_through_all_four_actors(settings, worker):
    job_id = _submit(settings)
    job = wait_for_job(settings, job_id)
    assert job.state == "done", job.error
    assert job.percent == 100.0
    assert set(job.timings) == {"downloading", "ingesting", "fast_detect", "detailed_detect"}
    assert job.counts["frames"] == 8
    assert job.counts["tracks"] == _count(settings, TrackRecord, job_id) > 0
    assert _count(settings, FileRecord, job_id) == 8
    results = settings.job_dir(job_id) / "results"
    assert (results / "tracks.json").exists() and (results / "report.mpc").exists()


def test_stage_delivered_again_duplicates_nothing(settings, stub_broker, worker):
    job_id = _submit(settings)
    assert wait_for_job(settings, job_id).state == "done"
    raw = settings.job_dir(job_id) / "raw"
    before = {
        "files": _count(settings, FileRecord, job_id),
        "tracks": _count(settings, TrackRecord, job_id),
        "observations": _count(settings, Observation, job_id),
        "raw": sorted(p.name for p in raw.iterdir()),
    }

    # Delivered again after the job finished: a no-op, the job stays done.
    ingest.send(job_id)
    detailed_detect.send(job_id)
    stub_broker.join("data", timeout=30_000)
    stub_broker.join("detailed_detect", timeout=30_000)
    worker.join()
    assert wait_for_job(settings, job_id).state == "done"

    # Redelivered while the job is still active (a worker died before acking):
    # the stage and the ones after it run again and replace, never append.
    for state, actor in (("ingesting", ingest), ("detailed_detect", detailed_detect)):
        with session_factory(settings.db_url)() as session:
            crud.update_job(session=session, job_id=job_id, state=state)
        actor.send(job_id)
        assert wait_for_job(settings, job_id).state == "done"
        after = {
            "files": _count(settings, FileRecord, job_id),
            "tracks": _count(settings, TrackRecord, job_id),
            "observations": _count(settings, Observation, job_id),
            "raw": sorted(p.name for p in raw.iterdir()),
        }
        assert after == before, f"after redelivering {actor.actor_name}"
    started = [m for k, m in _events(settings, job_id) if m == "ingesting started"]
    assert len(started) == 2


@pytest.mark.filterwarnings("ignore:skipped")
def test_bad_data_fails_once_naming_the_file_without_retry(settings, monkeypatch, worker):
    folder = Path(settings.local_roots[0]) / "night1"
    folder.mkdir(parents=True)
    for name in ("a.fits", "b.fits", "c.fits"):
        (folder / name).write_text("not a FITS file\n")
    calls = _counting(monkeypatch, "ingest")

    job_id = _submit(settings, source="local", path=str(folder))
    job = wait_for_job(settings, job_id)

    assert job.state == "failed"
    assert "a.fits" in job.error and "FITS" in job.error
    assert calls == [job_id], "bad data must not be retried"
    events = _events(settings, job_id)
    assert [k for k, _ in events].count("failed") == 1
    assert not any(m.startswith("fast_detect") for _, m in events)


def test_transient_error_is_retried_and_the_job_finishes(settings, monkeypatch, worker):
    calls = _counting(monkeypatch, "download", fail_first=1)
    job_id = _submit(settings, dispatch=lambda job_id: None)
    download.send_with_options(args=(job_id,), min_backoff=10, max_backoff=50)

    job = wait_for_job(settings, job_id)
    assert job.state == "done", job.error
    assert calls == [job_id, job_id]
    assert job.error is None


def test_error_that_persists_fails_the_job_after_the_retries(settings, monkeypatch, worker):
    calls = _counting(monkeypatch, "download", always=True)
    job_id = _submit(settings, dispatch=lambda job_id: None)
    download.send_with_options(args=(job_id,), min_backoff=10, max_backoff=50)

    job = wait_for_job(settings, job_id, timeout=30)
    assert job.state == "failed"
    assert "RuntimeError" in job.error and "after 3 retries" in job.error
    assert len(calls) == 4  # the first attempt and three retries


def test_cancelled_job_stops_at_the_next_stage(settings, monkeypatch, stub_broker, worker):
    downloaded, go_on = threading.Event(), threading.Event()
    real_download = pipeline.download
    later = {name: _counting(monkeypatch, name) for name in ("ingest", "fast", "detailed")}

    def download_then_wait(ctx, job_id):
        real_download(ctx, job_id)
        downloaded.set()
        assert go_on.wait(30)

    monkeypatch.setattr(pipeline, "download", download_then_wait)
    client = TestClient(create_app(dispatch=lambda job_id: None))
    job_id = client.post("/search", json=FIELD).json()["job_id"]
    try:
        download.send(job_id)
        assert downloaded.wait(30), "download did not run"
        r = client.delete(f"/jobs/{job_id}")
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
    finally:
        go_on.set()

    # The ingest actor runs, sees the cancellation and stops; nothing after it runs.
    for queue in ("download", "data", "fast_detect"):
        stub_broker.join(queue, timeout=30_000)
    job = wait_for_job(settings, job_id)
    assert job.state == "cancelled"
    assert later["ingest"] == [job_id]
    assert later["fast"] == [] and later["detailed"] == []
    assert _count(settings, FileRecord, job_id) == 0
    assert _count(settings, TrackRecord, job_id) == 0
    assert set(job.timings) == {"downloading"}
    assert not any(m == "ingesting started" for _, m in _events(settings, job_id))


@pytest.mark.parametrize("stage", ["ingest", "fast", "detailed"])
def test_stage_for_unknown_job_is_dropped(settings, stage):
    ctx = pipeline.Context(settings)
    with pytest.raises(pipeline.Cancelled, match="does not exist"):
        getattr(pipeline, stage)(ctx, "0" * 32)


def test_cancel_during_the_last_stage_is_not_undone(settings, monkeypatch, stub_broker, worker):
    measured, go_on = threading.Event(), threading.Event()
    real_detailed_detect = pipeline.detailed_detect

    def detailed_detect_then_wait(*args, **kwargs):
        tracks = real_detailed_detect(*args, **kwargs)
        measured.set()
        assert go_on.wait(30)
        return tracks

    monkeypatch.setattr(pipeline, "detailed_detect", detailed_detect_then_wait)
    client = TestClient(create_app())
    job_id = client.post("/search", json=FIELD).json()["job_id"]
    try:
        assert measured.wait(60), "the detailed stage did not run"
        assert client.delete(f"/jobs/{job_id}").json()["state"] == "cancelled"
    finally:
        go_on.set()
    stub_broker.join("detailed_detect", timeout=30_000)
    assert wait_for_job(settings, job_id).state == "cancelled"
