"""``auto`` picks a survey or says what it tried; ``local`` skips frames off the position;
``GET /sources`` lists every source with its coverage."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.sources import SOURCES
from app.sources.auto import plan
from detectors import io

from .archive import ZtfArchive, serve_tesscut, tess_field, tesscut_cube, tesscut_zip, ztf_field
from .conftest import closed_port
from .helpers import STAGES, job_of, run_job, submit, tracks_of


def test_plan_orders_surveys_by_fitness():
    assert plan(150.0, 20.0, {}) == (["ztf", "tess"], [])
    tried, unfit = plan(95.0, -60.0, {})
    assert tried == ["tess"] and "ztf (does not reach Dec -60.00" in unfit[0]
    tried, unfit = plan(150.0, 20.0, {"end": "2018-05-01T00:00:00"})
    assert tried == ["ztf"] and unfit[0].startswith("tess (the time window ends before")


def test_auto_with_every_survey_unreachable_names_what_it_tried(make_env):
    dead = f"http://127.0.0.1:{closed_port()}"
    settings = make_env(
        ASTROHUNTER_TESSCUT_URL=f"{dead}/tesscut/api/v0.1/", ASTROHUNTER_IRSA_URL=f"{dead}/ibe/"
    )
    job_id = submit(settings, ra=150.1, dec=20.2, source="auto")
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    assert job.state == "failed"
    for word in ("auto:", "ztf (", "tess (", "'local'", "'simulated'", "offline"):
        assert word in job.error, (word, job.error)
    assert "http" not in job.error and "\n" not in job.error, job.error
    notes = [e.message for e in job.events if e.kind == "failed"]
    assert notes == [job.error]


def test_auto_without_network_fails_at_once_in_one_sentence(make_env):
    """Host names that do not resolve (no network, no DNS): no retries, no URLs, one sentence."""
    settings = make_env(
        ASTROHUNTER_TESSCUT_URL="http://tesscut.astrohunter-test.invalid/tesscut/api/v0.1/",
        ASTROHUNTER_IRSA_URL="http://irsa.astrohunter-test.invalid/ibe/",
        ASTROHUNTER_DOWNLOAD_RETRIES="4",
        ASTROHUNTER_DOWNLOAD_BACKOFF="2",
    )
    job_id = submit(settings, ra=150.1, dec=20.2, source="auto")
    started = time.monotonic()
    run_job(job_id, stages=STAGES[:1])
    elapsed = time.monotonic() - started
    job = job_of(settings, job_id)
    assert job.state == "failed" and elapsed < 10.0, (job.state, elapsed)
    assert job.error.startswith("auto: no survey gave frames of RA 150.1000 Dec 20.2000"), job.error
    assert "ztf (no network)" in job.error and "tess (no network)" in job.error, job.error
    assert "'local'" in job.error and "'simulated'" in job.error and "offline" in job.error
    assert len(job.error) < 250 and "http" not in job.error and job.error.count(". ") == 0


def test_auto_passes_over_a_survey_without_data(make_env, archive):
    settings = make_env()
    ra, dec = 95.25, 20.5
    # IRSA answers, but has no images there: auto moves on to TESS.
    nothing = ZtfArchive(ztf_field(ra, dec), ra, dec)
    nothing.rows.clear()
    nothing.serve(archive)
    sim = tess_field(ra, dec)
    cube = tesscut_cube(sim, ra=ra, dec=dec)
    serve_tesscut(archive, ra=ra, dec=dec, zipped=tesscut_zip(cube, ra=ra, dec=dec))
    job_id = submit(settings, ra=ra, dec=dec, source="auto", radius_arcmin=22.0)
    run_job(job_id, stages=STAGES[:2])
    job = job_of(settings, job_id)
    assert job.state == "ingesting" and job.counts["frames"] == 10
    notes = [e.message for e in job.events if e.kind == "source"]
    assert notes[0].startswith("auto: using tess (passed over: ztf: IRSA has no ZTF")


def test_local_skips_frames_that_miss_the_position(make_env, tmp_path):
    settings = make_env()
    field = ztf_field(150.1, 20.2)
    folder = tmp_path / "local" / "night"
    for name, data, header in field.frames:
        io.write_fits(folder / name, data, header)
    elsewhere = field.frames[0][2].copy()
    elsewhere["CRVAL1"] += 1.0  # a frame of another field
    io.write_fits(folder / "other_field.fits", field.frames[0][1], elsewhere)
    job_id = submit(settings, ra=150.1, dec=20.2, source="local", path=str(folder))
    run_job(job_id, stages=STAGES[:2])
    job = job_of(settings, job_id)
    assert job.state == "ingesting" and job.counts["frames"] == 6
    skipped = [e.message for e in job.events if e.kind == "skipped"]
    assert skipped == [
        "other_field.fits: does not cover the searched position (RA 150.10000 Dec 20.20000)"
    ]


def test_local_template_path_is_the_template_of_the_search(make_env, tmp_path):
    """Issue 15: the local source's ``template_path`` frames are subtracted instead of the median."""
    settings = make_env()
    field = ztf_field(150.1, 20.2, reference=True)
    for name, data, header in field.frames:
        io.write_fits(tmp_path / "local" / "night" / name, data, header)
    for name, data, header in field.template:
        io.write_fits(tmp_path / "local" / "before" / name, data, header)
    job_id = submit(
        settings,
        ra=150.1,
        dec=20.2,
        source="local",
        path=str(tmp_path / "local" / "night"),
        template_path=str(tmp_path / "local" / "before" / "*.fits"),
    )
    run_job(job_id)
    job = job_of(settings, job_id)
    assert job.state == "done", job.error
    assert job.counts["frames"] == 6  # the template is not searched
    assert any("template of 1 files" in e.message for e in job.events)
    run = tracks_of(settings, job_id)["run"]
    assert run["template"]["kind"] == "reference"
    assert run["template"]["files"] == ["tpl_000.fits"]


def test_local_template_path_outside_the_allowed_folders_is_refused(make_env, tmp_path):
    settings = make_env()
    for name, data, header in ztf_field(150.1, 20.2).frames[:3]:
        io.write_fits(tmp_path / "local" / "night" / name, data, header)
    job_id = submit(
        settings,
        ra=150.1,
        dec=20.2,
        source="local",
        path=str(tmp_path / "local" / "night"),
        template_path=str(tmp_path / "elsewhere"),
    )
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    assert job.state == "failed"
    assert job.error.startswith("template_path: ") and "outside the allowed folders" in job.error


def test_local_with_no_frame_on_the_position_fails(make_env, tmp_path):
    settings = make_env()
    folder = tmp_path / "local" / "night"
    for name, data, header in ztf_field(150.1, 20.2).frames[:3]:
        io.write_fits(folder / name, data, header)
    job_id = submit(settings, ra=10.0, dec=-5.0, source="local", path=str(folder))
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    assert job.state == "failed" and "none of the 3 frames" in job.error


@pytest.fixture
def client(settings):
    with TestClient(create_app(dispatch=lambda job_id: None)) as c:
        yield c


def test_sources_lists_every_source_with_its_coverage(client):
    answer = client.get("/sources")
    assert answer.status_code == 200
    listed = {s["name"]: s for s in answer.json()}
    assert set(listed) == set(SOURCES) >= {"auto", "local", "simulated", "tess", "ztf"}
    for info in listed.values():
        assert info["coverage"] and info["description"]
    assert listed["simulated"]["simulated"] and not listed["ztf"]["simulated"]
    assert "-31" in listed["ztf"]["coverage"] and "2018" in listed["tess"]["coverage"]


def test_search_refuses_a_window_before_the_survey(client):
    answer = client.post(
        "/search", json={"ra": 150.0, "dec": 20.0, "source": "ztf", "end": "2017-01-01T00:00:00"}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "end"]


def test_search_refuses_a_template_path_outside_the_allowed_folders(client, settings, tmp_path):
    for name, data, header in ztf_field(150.1, 20.2).frames[:3]:
        io.write_fits(tmp_path / "local" / "night" / name, data, header)
    body = {"ra": 150.1, "dec": 20.2, "source": "local", "path": str(tmp_path / "local" / "night")}
    answer = client.post("/search", json={**body, "template_path": "/etc"})
    assert answer.status_code == 422
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", "template_path"]
    assert "outside the allowed folders" in detail["msg"] and "/etc" in detail["msg"]
