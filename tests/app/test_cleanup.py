"""Cleanup never touches active jobs, keeps results, and frees space oldest first."""

from __future__ import annotations

import datetime as dt

import pytest

from app.cleanup import plan_cleanup, run_cleanup
from app.config import Settings
from app.db import crud
from app.db.base import session_factory
from app.status import StatusBoard


@pytest.fixture
def world(tmp_path):
    settings = Settings(DATA_DIR=tmp_path / "data", DATA_RETENTION_DAYS=7, MIN_DISK_SPACE_GB=0)
    session = session_factory(settings.db_url)()
    jobs = {}
    now = dt.datetime.now(dt.UTC)
    for name, state, age_days in (
        ("old_done", "done", 30),
        ("old_running", "fast_detect", 30),
        ("old_queued", "queued", 30),
        ("new_done", "done", 1),
        ("mid_failed", "failed", 10),
    ):
        job, _ = crud.create_or_get_job(
            session=session,
            ra=10.0,
            dec=float(len(jobs)),
            source="simulated",
            params={},
            simulated=True,
        )
        for folder in ("raw", "work", "results"):
            d = settings.job_dir(job.id) / folder
            d.mkdir(parents=True)
            (d / "f.bin").write_bytes(b"x" * 1000)
        crud.update_job(session=session, job_id=job.id, state=state)
        job.updated_at = now - dt.timedelta(days=age_days)
        session.commit()
        jobs[name] = job.id
    yield settings, session, jobs
    session.close()


def _plan(settings, session, free_bytes=10**15):
    now = dt.datetime.now(dt.UTC)
    return plan_cleanup(session=session, settings=settings, now=now, free_bytes=free_bytes)


def test_retention_takes_old_finished_jobs_only(world):
    settings, session, jobs = world
    planned = {r.job_id for r in _plan(settings, session)}
    assert planned == {jobs["old_done"], jobs["mid_failed"]}


def test_active_jobs_are_never_planned_even_when_the_disk_is_full(world):
    settings, session, jobs = world
    settings.min_disk_space_gb = 10
    planned = [r.job_id for r in _plan(settings, session, free_bytes=0)]
    assert jobs["old_running"] not in planned and jobs["old_queued"] not in planned
    # Short of space, recent finished jobs go too, oldest first.
    assert planned == [jobs["old_done"], jobs["mid_failed"], jobs["new_done"]]


def test_disk_cleanup_stops_once_enough_is_free(world):
    settings, session, jobs = world
    settings.min_disk_space_gb = 1e-6  # 1000 bytes short; each job frees 2000
    settings.data_retention_days = 1000
    planned = [r.job_id for r in _plan(settings, session, free_bytes=0)]
    assert planned == [jobs["old_done"]]


def test_run_removes_frames_keeps_results_and_records_it(world):
    settings, session, jobs = world
    board = StatusBoard(settings)
    dry = run_cleanup(session=session, settings=settings, board=board, dry_run=True)
    assert len(dry) == 2 and (settings.job_dir(jobs["old_done"]) / "raw").exists()
    done = run_cleanup(session=session, settings=settings, board=board)
    assert {r.job_id for r in done} == {jobs["old_done"], jobs["mid_failed"]}
    old = settings.job_dir(jobs["old_done"])
    assert not (old / "raw").exists() and not (old / "work").exists()
    assert (old / "results" / "f.bin").exists()
    running = settings.job_dir(jobs["old_running"])
    assert (running / "raw" / "f.bin").exists() and (running / "work" / "f.bin").exists()
    job = crud.get_job(session=session, job_id=jobs["old_done"])
    assert job.frames_cleaned
    assert any(e.kind == "cleanup" for e in job.events)
    # Nothing left to do the second time.
    assert run_cleanup(session=session, settings=settings, board=board) == []


def test_only_one_cleanup_at_a_time(world):
    import fcntl

    settings, session, _ = world
    with open(settings.data_dir / ".cleanup.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert run_cleanup(session=session, settings=settings, board=StatusBoard(settings)) == []


def test_stale_download_cache_entries_go_fresh_ones_stay(world):
    import os
    import time

    settings, session, _ = world
    old = settings.data_dir / "cache" / "ztf" / "oldkey"
    new = settings.data_dir / "cache" / "ztf" / "newkey"
    for entry in (old, new):
        entry.mkdir(parents=True)
        (entry / "frame.fits").write_bytes(b"x" * 100)
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    removals = run_cleanup(session=session, settings=settings, board=StatusBoard(settings))
    assert any(r.job_id == "cache" and old in r.paths for r in removals)
    assert not old.exists() and (new / "frame.fits").exists()
