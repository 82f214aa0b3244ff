"""Review decisions through the API: stored with their time, in the tracks, guarded like every
write, kept across restarts and database upgrades, and filtering the reports (issue 14).

A finished job is written straight into the database (no search runs): these are the
API's rules. The browser tests (``test_review_page``) run a real search.
"""

from __future__ import annotations

import datetime as dt
import html

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from app.api.main import create_app
from app.db import crud
from app.db.base import _add_missing_columns, get_engine, init_db, session_factory
from detectors.ades import AdesContext, AdesTrack, ades_psv

from ..conftest import check_contract

IDS = ("AH00001", "AH00002", "AH00003")


def _track(track_id: str) -> dict:
    return {
        "id": track_id,
        "observations": [
            {
                "mjd": 58000.0 + i / 96,
                "ra": 10.0,
                "dec": 5.0,
                "mag": None,
                "snr": 9.0,
                "frame": f"f{i}.fits",
            }
            for i in range(3)
        ],
        "rate_arcsec_per_hour": 12.0,
        "position_angle_deg": 90.0,
        "stacked_snr": 20.0,
        "origin": "fast",
        "known_object": None,
    }


def _mpc_line(track_id: str, k: int) -> str:
    return f"{'':5}{track_id:<7}{f'  C2017 09 04.{k:05d} 00 40 00.000+05 00 00.00         18.0 V':<65}500"


def make_job(settings, *, state: str = "done", seed: float = 10.0) -> str:
    """A job in ``state`` with three tracks and their MPC report."""
    with session_factory(settings.db_url)() as session:
        job, _ = crud.create_or_get_job(
            session=session, ra=seed, dec=5.0, source="simulated", params={}, simulated=True
        )
        crud.replace_tracks(session=session, job_id=job.id, tracks=[_track(i) for i in IDS])
        crud.update_job(session=session, job_id=job.id, state=state, percent=100.0)
    lines = ["COM SIMULATED DATA", *(_mpc_line(i, k) for i in IDS for k in range(3))]
    results = settings.job_dir(job.id) / "results"
    results.mkdir(parents=True)
    (results / "report.mpc").write_text("".join(line + "\n" for line in lines))
    (results / "report.psv").write_text(_psv())
    return job.id


def _psv() -> str:
    context = AdesContext(
        observatory_code="688",
        submitter="A. Observer",
        measurers=["A. Observer"],
        telescope_design="reflector",
        telescope_aperture_m=0.4,
        telescope_detector="CCD",
    )
    arrays = {k: np.array([1.0, 1.1, 1.2]) for k in ("ra", "dec")}
    arrays["mjd"] = np.array([58000.0, 58000.01, 58000.02])
    errors = {k: np.full(3, 0.2) for k in ("rms_ra_arcsec", "rms_dec_arcsec")}
    tracks = [AdesTrack(trk_sub=i, **arrays, **errors) for i in IDS]
    return ades_psv(context, tracks, ast_cat="Gaia2")


@pytest.fixture
def http(settings, stub_broker):
    with TestClient(create_app(dispatch=lambda job_id: None)) as client:
        yield client


def _reviews(http, job_id: str) -> dict[str, dict]:
    document = http.get(f"/jobs/{job_id}/tracks").raise_for_status().json()
    check_contract(document)
    return {t["id"]: t["review"] for t in document["tracks"]}


def test_tracks_are_pending_until_reviewed_and_a_decision_keeps_its_time(http, settings):
    job = make_job(settings)
    assert _reviews(http, job) == {i: {"state": "pending"} for i in IDS}
    before = dt.datetime.now(dt.UTC)
    r = http.patch(f"/jobs/{job}/tracks/AH00002", json={"review": "confirmed"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "AH00002" and r.json()["review"]["state"] == "confirmed"
    at = dt.datetime.fromisoformat(r.json()["review"]["at"])
    assert before - dt.timedelta(seconds=1) <= at <= dt.datetime.now(dt.UTC)
    http.patch(f"/jobs/{job}/tracks/AH00003", json={"review": "rejected"}).raise_for_status()
    reviews = _reviews(http, job)
    assert {i: r["state"] for i, r in reviews.items()} == {
        "AH00001": "pending",
        "AH00002": "confirmed",
        "AH00003": "rejected",
    }
    undone = http.patch(f"/jobs/{job}/tracks/AH00002", json={"review": "pending"}).json()
    assert undone["review"]["state"] == "pending" and "at" in undone["review"]


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/jobs/{job}/tracks/AH00009", {"review": "confirmed"}, 404),
        ("/jobs/0123456789abcdef0123456789abcdef/tracks/AH00001", {"review": "confirmed"}, 404),
        ("/jobs/not-a-job/tracks/AH00001", {"review": "confirmed"}, 404),
        ("/jobs/{job}/tracks/AH00001", {"review": "maybe"}, 422),
        ("/jobs/{job}/tracks/AH00001", {"review": True}, 422),
        ("/jobs/{job}/tracks/AH00001", {}, 422),
        ("/jobs/{job}/tracks/AH00001", {"review": "confirmed", "by": "me"}, 422),
    ],
)
def test_unknown_tracks_are_404_and_bad_decisions_422(http, settings, path, body, code):
    job = make_job(settings)
    r = http.patch(path.format(job=job), json=body)
    assert r.status_code == code, r.text
    assert _reviews(http, job) == {i: {"state": "pending"} for i in IDS}


def test_a_job_that_is_not_done_cannot_be_reviewed(http, settings):
    job = make_job(settings, state="detailed_detect")
    r = http.patch(f"/jobs/{job}/tracks/AH00001", json={"review": "confirmed"})
    assert r.status_code == 409 and "detailed_detect" in r.text


def test_a_review_needs_the_api_key_when_one_is_set(make_env, stub_broker):
    settings = make_env(ASTROHUNTER_API_KEY="s3cret")
    job = make_job(settings)
    with TestClient(create_app(dispatch=lambda job_id: None)) as http:
        url, body = f"/jobs/{job}/tracks/AH00001", {"review": "confirmed"}
        assert http.patch(url, json=body).status_code == 401
        assert http.patch(url, json=body, headers={"X-API-Key": "nope"}).status_code == 401
        assert http.patch(url, json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert _reviews(http, job)["AH00001"]["state"] == "confirmed"  # reads stay open


def test_decisions_survive_a_restart_of_the_api(settings, stub_broker):
    job = make_job(settings)
    with TestClient(create_app(dispatch=lambda job_id: None)) as http:
        http.patch(f"/jobs/{job}/tracks/AH00001", json={"review": "rejected"}).raise_for_status()
    get_engine(settings.db_url).dispose()  # no connection of the first app is reused
    with TestClient(create_app(dispatch=lambda job_id: None)) as http:
        assert _reviews(http, job)["AH00001"]["state"] == "rejected"


def test_reports_of_the_confirmed_tracks_hold_only_their_lines(http, settings):
    job = make_job(settings)
    full = http.get(f"/jobs/{job}/report.mpc").text
    assert full.count("\n") == 10
    assert http.get(f"/jobs/{job}/report.mpc?review=confirmed").text == "COM SIMULATED DATA\n"
    http.patch(f"/jobs/{job}/tracks/AH00001", json={"review": "confirmed"}).raise_for_status()
    http.patch(f"/jobs/{job}/tracks/AH00003", json={"review": "confirmed"}).raise_for_status()
    http.patch(f"/jobs/{job}/tracks/AH00002", json={"review": "rejected"}).raise_for_status()
    confirmed = http.get(f"/jobs/{job}/report.mpc?review=confirmed").text.splitlines()
    assert confirmed[0] == "COM SIMULATED DATA"
    assert [line[5:12] for line in confirmed[1:]] == ["AH00001"] * 3 + ["AH00003"] * 3
    rejected = http.get(f"/jobs/{job}/report.mpc?review=rejected").text.splitlines()
    assert [line[5:12] for line in rejected[1:]] == ["AH00002"] * 3
    assert http.get(f"/jobs/{job}/report.mpc").text == full
    assert http.get(f"/jobs/{job}/report.mpc?review=maybe").status_code == 422
    psv = http.get(f"/jobs/{job}/report.psv?review=confirmed").text.splitlines()
    rows = psv[next(i for i, line in enumerate(psv) if line.startswith("permID")) + 1 :]
    assert [row.split("|")[2].strip() for row in rows] == ["AH00001"] * 3 + ["AH00003"] * 3


def test_an_old_database_gains_the_review_columns_and_keeps_its_tracks(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = init_db(url)
    with session_factory(url)() as session:
        job, _ = crud.create_or_get_job(
            session=session, ra=1.0, dec=2.0, source="simulated", params={}, simulated=True
        )
        crud.replace_tracks(session=session, job_id=job.id, tracks=[_track("AH00001")])
    with engine.begin() as conn:  # what a database of the previous version looks like
        conn.execute(text("ALTER TABLE tracks DROP COLUMN review"))
        conn.execute(text("ALTER TABLE tracks DROP COLUMN reviewed_at"))
    _add_missing_columns(engine)
    assert {"review", "reviewed_at"} <= {c["name"] for c in inspect(engine).get_columns("tracks")}
    with session_factory(url)() as session:
        assert crud.tracks_of(session=session, job_id=job.id)[0]["review"] == {"state": "pending"}
        crud.set_review(session=session, job_id=job.id, designation="AH00001", state="confirmed")
        assert crud.tracks_of(session=session, job_id=job.id)[0]["review"]["state"] == "confirmed"


def test_the_pages_are_html_and_their_assets_come_from_the_package(http, settings):
    job = make_job(settings)
    front = http.get("/")
    assert front.status_code == 200 and front.headers["content-type"].startswith("text/html")
    assert 'id="search-form"' in front.text
    page = http.get(f"/jobs/{job}").text
    for track_id in IDS:
        assert f'data-track-id="{track_id}"' in page
    for report in ("report.mpc", "report.psv"):
        assert f'href="/jobs/{job}/{report}?review=confirmed"' in page
    assert page.count('data-action="confirm"') == page.count('data-action="reject"') == 3
    assert http.get("/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    for asset in ("style.css", "api.js", "front.js", "review.js"):
        r = http.get(f"/static/{asset}")
        assert r.status_code == 200 and r.text, asset
    for bad in ("../routes/review.py", "..%2Fmain.py", "nope.js", "style.css.map"):
        assert http.get(f"/static/{bad}").status_code == 404, bad


def test_the_job_page_shows_known_objects_and_neo_scores_when_the_results_have_them(http, settings):
    """The fields the known-object identification adds (known, digest2, run.known_in_field)."""
    with session_factory(settings.db_url)() as session:
        job, _ = crud.create_or_get_job(
            session=session, ra=20.0, dec=5.0, source="simulated", params={}, simulated=True
        )
        known = {
            **_track("AH00001"),
            "known_object": "(5945) Roachapproach",
            "known": {
                "number": 5945,
                "offset_arcsec": 0.3,
                "predicted_v": 17.8,
                "source": "mpcorb",
            },
            "digest2": {"neo": 71.0},
        }
        unknown = {**_track("AH00002"), "identification": "SkyBoT could not be reached"}
        crud.replace_tracks(session=session, job_id=job.id, tracks=[known, unknown])
        crud.update_job(
            session=session,
            job_id=job.id,
            state="done",
            run={"known_in_field": [{}, {}], "known": {"source": "mpcorb"}},
        )
    page = html.unescape(http.get(f"/jobs/{job.id}").text)
    assert "(5945) Roachapproach" in page and '0.3" from its prediction' in page
    assert 'class="chip neo high"' in page and "NEO 71" in page
    assert 'title="SkyBoT could not be reached">new</span>' in page  # the other track, and why
    assert "2 known objects predicted in the field" in page
