"""``ztf``: IBE metadata picks the night, cutouts become frames, a search finds the movers."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from astropy.io import ascii as astropy_ascii
from dramatiq import Worker
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.broker import broker
from app.sources.ztf import choose_night, cutout_path

from .archive import ZTF_FIELD, ZtfArchive, ztf_field
from .helpers import STAGES, job_of, run_job, submit, tracks_of

RA, DEC = 150.1, 20.2
RADIUS = 2.0  # arcmin: 4' cutouts, 238 px


@pytest.fixture(scope="module")
def sim():
    return ztf_field(RA, DEC)


@pytest.fixture
def ztf(archive, sim):
    fake = ZtfArchive(sim, RA, DEC)
    fake.serve(archive)
    return fake


def _matched(tracks: list[dict], truth: dict) -> bool:
    for track in tracks:
        if abs(track["rate_arcsec_per_hour"] / truth["rate_arcsec_per_hour"] - 1) > 0.1:
            continue
        obs = track["observations"][0]
        true = min(truth["observations"], key=lambda o: abs(o["mjd"] - obs["mjd"]))
        dra = (obs["ra"] - true["ra"]) * np.cos(np.radians(DEC)) * 3600
        if (
            abs(obs["mjd"] - true["mjd"]) * 86400 < 1
            and np.hypot(dra, (obs["dec"] - true["dec"]) * 3600) < 2.0
        ):
            return True
    return False


def test_night_with_most_exposures_one_image_per_exposure(ztf):
    table = astropy_ascii.read(ztf.ipac_table().decode(), format="ipac", guess=False)
    rows = choose_night(table, ra=RA, dec=DEC)
    assert len(rows) == 6  # the 6-exposure night, not the 2-exposure one
    assert set(rows["field"]) == {ZTF_FIELD}  # overlapping field's copies dropped
    assert list(rows["obsjd"]) == sorted(rows["obsjd"])
    assert {cutout_path(r) for r in rows} == set(ztf.images)
    assert len(choose_night(table, ra=RA, dec=DEC, max_frames=4)) == 4


def test_search_from_ztf_through_the_api_and_workers(make_env, ztf, sim, archive):
    settings = make_env()
    broker.flush_all()
    worker = Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        with TestClient(create_app()) as client:
            answer = client.post(
                "/search",
                json={
                    "ra": RA,
                    "dec": DEC,
                    "radius_arcmin": RADIUS,
                    "source": "ztf",
                    "faint": False,
                },
            )
            assert answer.status_code == 202, answer.text
            job_id = answer.json()["job_id"]
            deadline = time.monotonic() + 60
            while client.get(f"/status/{job_id}").json()["state"] not in ("done", "failed"):
                assert time.monotonic() < deadline, "the job did not finish"
                time.sleep(0.1)
            status = client.get(f"/status/{job_id}").json()
            assert status["state"] == "done", status["error"]
    finally:
        worker.stop()
        broker.flush_all()
    job = job_of(settings, job_id)
    assert job.counts["frames"] == 6
    # One metadata query, one cutout per exposure of the chosen night.
    assert archive.count("/ibe/search/") == 1
    assert archive.count("/ibe/data/") == 6
    for _, query in archive.requests[1:]:
        assert query["center"] == f"{RA:.7f},{DEC:.7f}" and query["size"] == "4.0000arcmin"
    notes = " ".join(e.message for e in job.events if e.kind == "source")
    assert "6 exposures" in notes and "zr" in notes
    tracks = tracks_of(settings, job_id)["tracks"]
    for truth in sim.truth["objects"]:
        assert _matched(tracks, truth), f"mover {truth['id']} not found"


def test_second_identical_search_downloads_nothing(make_env, ztf, archive):
    settings = make_env()
    first = submit(settings, ra=RA, dec=DEC, source="ztf", radius_arcmin=RADIUS)
    run_job(first, stages=STAGES[:2])
    assert job_of(settings, first).counts["frames"] == 6
    n = archive.count()
    second = submit(settings, ra=RA, dec=DEC, source="ztf", radius_arcmin=RADIUS)
    run_job(second, stages=STAGES[:2])
    assert archive.count() == n  # zero requests
    assert job_of(settings, second).counts["frames"] == 6
    assert any("from the cache" in e.message for e in job_of(settings, second).events)
    # Another window is another search: it asks IRSA again.
    third = submit(
        settings,
        ra=RA,
        dec=DEC,
        source="ztf",
        radius_arcmin=RADIUS,
        start="2024-04-10T00:00:00",
        end="2024-04-11T00:00:00",
    )
    run_job(third, stages=STAGES[:1])
    assert archive.count("/ibe/search/") == 2
    _, query = [r for r in archive.requests if r[0].startswith("/ibe/search/")][-1]
    assert query["where"] == "obsjd>=2460410.500000 AND obsjd<=2460411.500000"


def test_south_of_ztf_fails_with_a_clear_message(make_env, ztf, archive):
    settings = make_env()
    job_id = submit(settings, ra=RA, dec=-45.0, source="ztf")
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    assert job.state == "failed" and "south of ZTF's limit" in job.error
    assert archive.count() == 0


def test_ztf_reference_image_is_downloaded_cached_and_used_as_the_template(make_env, archive):
    """Issue 15: survey_reference asks IBE's ref table for the night's field, CCD quadrant
    and filter, cuts the refimg out like the frames, caches it, and the search subtracts it."""
    sim = ztf_field(RA, DEC, reference=True)
    fake = ZtfArchive(sim, RA, DEC)
    fake.serve(archive)
    settings = make_env()
    job_id = submit(
        settings, ra=RA, dec=DEC, source="ztf", radius_arcmin=RADIUS, survey_reference=True
    )
    run_job(job_id)
    job = job_of(settings, job_id)
    assert job.state == "done", job.error
    refs = [q for p, q in archive.requests if p == "/ibe/search/ztf/products/ref"]
    assert len(refs) == 1
    assert refs[0]["where"] == f"field={ZTF_FIELD} AND ccdid=5 AND qid=2 AND filtercode='zr'"
    name = f"ztf_{ZTF_FIELD:06d}_zr_c05_q2_refimg.fits"
    got = [q for p, q in archive.requests if p.startswith("/ibe/data/ztf/products/ref/")]
    assert len(got) == 1 and got[0]["size"] == "4.0000arcmin"
    assert any("reference image of field 600 c05 q2 zr" in e.message for e in job.events)
    tracks = tracks_of(settings, job_id)
    assert tracks["run"]["template"]["kind"] == "reference"
    assert tracks["run"]["template"]["files"] == [name]
    for truth in sim.truth["objects"]:
        assert _matched(tracks["tracks"], truth), f"mover {truth['id']} not found"
    # The same search again: frames and reference from the cache, nothing asked.
    n = archive.count()
    again = submit(
        settings, ra=RA, dec=DEC, source="ztf", radius_arcmin=RADIUS, survey_reference=True
    )
    run_job(again, stages=STAGES[:3])
    assert archive.count() == n
    assert json.loads((settings.job_dir(again) / "manifest.json").read_text())["template"]


def test_ztf_field_without_a_reference_image_says_so(make_env, ztf, archive):
    settings = make_env()
    job_id = submit(
        settings, ra=RA, dec=DEC, source="ztf", radius_arcmin=RADIUS, survey_reference=True
    )
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    assert job.state == "failed"
    assert "no reference image of field 600 c05 q2 zr" in job.error
