"""Bad input: fuzzed requests, and a corrupt FITS file among a local source's frames.

Requests generated from the OpenAPI schema by schemathesis, valid and
invalid, must never get a server error (5xx): bad input is the client's
error, answered 4xx. A corrupt frame must fail only its own job, with a
message naming the file, while another job submitted with it finishes.
The bugs these tests found (see git history) are fixed; each keeps a test.
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from detectors import io
from detectors.simulate import simulate_field

from ..conftest import need
from .conftest import field
from .harness import summary_line

pytestmark = pytest.mark.reliability

#: Generated requests per operation and generation mode (valid, invalid).
EXAMPLES = 60
#: Largest value SQLite (and PostgreSQL's bigint) can take.
INT64_MAX = 2**63 - 1


def _as_server(app):
    """The app as a server runs it: an unhandled error is a 500 response, not an exception."""

    async def served(scope, receive, send):
        started = False

        async def tracked(message):
            nonlocal started
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracked)
        except Exception:
            if not started:
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b"unhandled error"})

    return served


@pytest.fixture
def api(make_env):
    """The API in-process (SQLite, no Redis), whose jobs are never started."""
    make_env()
    return create_app(dispatch=lambda job_id: None)


@pytest.fixture
def hypothesis_home(tmp_path):
    """Hypothesis's caches in ``tmp_path``, not in a ``.hypothesis/`` of the work tree."""
    try:
        from hypothesis.configuration import set_hypothesis_home_dir
    except ImportError:  # no hypothesis, so no schemathesis: the test says so
        yield
        return
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    set_hypothesis_home_dir(None)


def test_fuzzed_requests_never_get_a_server_error(api, hypothesis_home):
    need(
        importlib.util.find_spec("schemathesis") is not None,
        "schemathesis (pip install schemathesis): the API fuzz test",
    )
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    # Jobs to aim the {job_id} routes at, besides the random ids (404).
    with TestClient(api) as http:
        existing = [http.post("/search", json=field(1.0)).json()["job_id"] for _ in range(2)]
        http.delete(f"/jobs/{existing[1]}")

    schema = schemathesis.openapi.from_asgi("/openapi.json", _as_server(api))
    errors: list[str] = []
    calls = 0

    def check(case) -> None:
        nonlocal calls
        calls += 1
        response = case.call()
        if response.status_code >= 500:
            errors.append(f"{response.status_code}: {case.as_curl_command()}")

    run = settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # nothing written to .hypothesis/
        derandomize=True,  # the same requests every run: no flaky CI
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    for result in schema.get_all_operations():
        operation = result.ok()
        variants = [{}]
        if "{job_id}" in operation.path:
            variants += [{"path_parameters": {"job_id": job_id}} for job_id in existing]
        for mode in schemathesis.GenerationMode:
            for fixed in variants:
                strategy = operation.as_strategy(generation_mode=mode, **fixed)
                try:
                    run(given(case=strategy)(check))()
                except Unsatisfiable:  # no parameters to make invalid
                    pass

    summary_line(
        "API fuzz (schemathesis)",
        faults=0,
        lost=0,
        duplicates=0,
        requests=calls,
        server_errors=len(errors),
    )
    assert calls > 500
    assert errors == [], "\n".join(errors[:20])


def _frames(folder, *, ra: float, dec: float, seed: int):
    """Four good 128 x 128 simulated frames of (ra, dec) in ``folder/frames``."""
    field_ = simulate_field(
        seed=seed,
        shape=(128, 128),
        n_frames=4,
        n_objects=3,
        snr_range=(8.0, 15.0),
        rate_range=(5.0, 80.0),
        ra=ra,
        dec=dec,
    )
    frames, _ = io.write_simulated_field(field_, folder)
    return sorted(frames.glob("*.fits"))


def test_corrupt_fits_fails_only_its_own_job(deploy, tmp_path):
    local = tmp_path / "local"
    d = deploy(env={"ASTROHUNTER_LOCAL_ROOTS": str(local)})
    ra, dec = 150.0, 2.0
    good = _frames(local / "all", ra=ra, dec=dec, seed=7)
    # Header intact, data cut short: its WCS reads, its pixels do not.
    corrupt = good[0].read_bytes()[: good[0].stat().st_size // 2]
    short = local / "short"  # two good frames and the corrupt one
    short.mkdir()
    for path in good[:2]:
        shutil.copy(path, short)
    (short / "corrupt.fits").write_bytes(corrupt)
    mixed = local / "mixed"  # four good frames and the corrupt one
    shutil.copytree(good[0].parent, mixed)
    (mixed / "corrupt.fits").write_bytes(corrupt)

    d.start_api()
    d.start_worker(threads=2)
    local_search = {"ra": ra, "dec": dec, "radius_arcmin": 1.0, "source": "local", "faint": False}
    jobs = {
        "short": d.submit({**local_search, "path": str(short)}),
        "mixed": d.submit({**local_search, "path": str(mixed)}),
        "other": d.submit(field(1.0)),
    }
    final = d.wait_final(jobs.values(), timeout=120)
    state = {name: final[job_id]["state"] for name, job_id in jobs.items()}
    summary_line(
        "corrupt FITS in a local source",
        faults=1,
        lost=int(state["other"] != "done"),
        duplicates=sum(d.duplicates(j) for j in jobs.values()),
        states=state,
    )
    assert state == {"short": "failed", "mixed": "done", "other": "done"}, f"{final}\n{d.logs()}"

    # Too few usable frames: the job fails at once (bad data is not retried), naming the file.
    error = final[jobs["short"]]["error"]
    assert "corrupt.fits" in error and "truncated" in error, error
    assert "usable frames" in error, error
    assert d.stage_runs(jobs["short"])["ingesting"] == 1

    # Enough good frames: the corrupt one is left out and named in the job's events.
    assert final[jobs["mixed"]]["counts"]["frames"] == 4
    assert final[jobs["mixed"]]["counts"]["skipped"] == 1
    skipped = [m for kind, m in d.events(jobs["mixed"]) if kind == "skipped"]
    assert len(skipped) == 1 and skipped[0].startswith("corrupt.fits: "), skipped
    assert all(d.duplicates(j) == 0 for j in jobs.values())


# --------------------------------------------------------------------------- bugs found


def test_jobs_offset_beyond_int64_is_refused(api):
    with TestClient(api, raise_server_exceptions=False) as http:
        r = http.get("/jobs", params={"offset": INT64_MAX + 1})
    assert r.status_code == 422, r.text


def test_search_window_mixing_naive_and_aware_times_reads_naive_as_utc(api):
    body = {**field(1.0), "start": "2024-04-01T00:00:00", "end": "2024-04-02T00:00:00Z"}
    backwards = {**body, "end": "2024-03-31T23:00:00+00:00"}
    with TestClient(api, raise_server_exceptions=False) as http:
        assert http.post("/search", json=body).status_code == 202
        r = http.post("/search", json=backwards)
    assert r.status_code == 422 and "time window" in r.text, r.text


def test_local_path_too_long_is_refused_as_bad_input(api, tmp_path):
    (tmp_path / "local").mkdir(exist_ok=True)  # ASTROHUNTER_LOCAL_ROOTS (make_env)
    body = {**field(1.0), "source": "local", "path": str(tmp_path / "local" / ("a" * 300))}
    with TestClient(api, raise_server_exceptions=False) as http:
        r = http.post("/search", json=body)
    assert r.status_code == 422, r.text
    assert "broker" not in r.text
