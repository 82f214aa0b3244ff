"""Downloads that go wrong: dropped connections, 5xx, 4xx, damaged files, a full disk."""

from __future__ import annotations

import gzip
import io
import shutil
import threading
import time
from collections import namedtuple

import numpy as np
import pytest
from astropy.io import fits

from app.disk import DiskSpaceError, check_disk
from app.sources.http import Downloader, RetryPolicy, SourceUnavailable, validate_fits
from detectors.errors import InputError

from .archive import ZtfArchive, ztf_field
from .conftest import closed_port
from .helpers import STAGES, job_of, run_job, submit

FAST = RetryPolicy(retries=3, backoff_s=0.01)
RA, DEC = 150.1, 20.2


def _fits_bytes() -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.arange(10000, dtype=np.float32).reshape(100, 100)).writeto(buffer)
    return buffer.getvalue()


@pytest.fixture
def fits_file(archive):
    body = _fits_bytes()
    archive.routes["/file.fits"] = lambda path, query: (200, "image/fits", body)
    return body


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_dropped_connection_mid_file_is_retried_and_leaves_no_partial_file(
    archive, fits_file, tmp_path
):
    archive.faults["/file.fits"] = ["drop"]
    with Downloader("test", policy=FAST) as http:
        size = http.download(f"{archive.url}/file.fits", tmp_path / "out" / "f.fits")
    assert size == len(fits_file)
    assert archive.count("/file.fits") == 2
    assert _leftovers(tmp_path / "out") == ["f.fits"]
    assert (tmp_path / "out" / "f.fits").read_bytes() == fits_file


def test_a_500_then_success(archive, fits_file, tmp_path):
    archive.faults["/file.fits"] = ["500"]
    reports: list[str] = []
    with Downloader("test", policy=FAST, report=reports.append) as http:
        http.download(f"{archive.url}/file.fits", tmp_path / "f.fits")
    assert archive.count("/file.fits") == 2
    assert reports and "HTTP 500" in reports[0] and "retry 1/3" in reports[0]


def test_failures_that_never_stop_give_source_unavailable(archive, fits_file, tmp_path):
    archive.faults["/file.fits"] = ["drop", "500", "drop", "500"]
    with Downloader("test", policy=FAST) as http, pytest.raises(SourceUnavailable) as err:
        http.download(f"{archive.url}/file.fits", tmp_path / "f.fits")
    assert archive.count("/file.fits") == 4  # the first try and 3 retries
    assert "failed 4 times" in str(err.value) and "/file.fits" in str(err.value)
    assert _leftovers(tmp_path) == []


def test_a_404_is_not_retried_and_names_the_url(archive, tmp_path):
    url = f"{archive.url}/missing.fits"
    with Downloader("test", policy=FAST) as http, pytest.raises(InputError) as err:
        http.download(url, tmp_path / "f.fits", params={"center": "1,2"})
    assert archive.count() == 1
    assert f"{url}?center=1%2C2" in str(err.value) and "404" in str(err.value)


def test_a_corrupt_file_is_rejected_by_name(archive, fits_file, tmp_path):
    archive.faults["/file.fits"] = ["corrupt"]
    with Downloader("test", policy=FAST) as http, pytest.raises(InputError) as err:
        http.download(f"{archive.url}/file.fits", tmp_path / "f.fits")
    assert "f.fits" in str(err.value) and "not a valid FITS file" in str(err.value)
    assert archive.count() == 1 and _leftovers(tmp_path) == []


def test_unreachable_service_is_retried_then_unavailable(tmp_path):
    with Downloader("test", policy=FAST) as http, pytest.raises(SourceUnavailable) as err:
        http.get_text(f"http://127.0.0.1:{closed_port()}/x")
    assert "ConnectError" in str(err.value)


def test_disk_check_counts_the_announced_size(monkeypatch, archive, fits_file, tmp_path):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 0, 2_000_000_000))
    check_disk(tmp_path, 1.0)  # 2 GB free, 1 GB to keep: fine
    with pytest.raises(DiskSpaceError, match=r"MIN_DISK_SPACE_GB=2\.5"):
        check_disk(tmp_path, 2.5)
    with Downloader("test", policy=FAST, min_free_gb=1.999999) as http:
        with pytest.raises(DiskSpaceError, match="after this"):
            http.download(f"{archive.url}/file.fits", tmp_path / "f.fits")
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- through a job


@pytest.fixture
def ztf(archive):
    fake = ZtfArchive(ztf_field(RA, DEC), RA, DEC)
    fake.serve(archive)
    return fake


def test_corrupt_cutout_fails_the_job_naming_the_file(make_env, ztf, archive):
    settings = make_env()
    archive.faults["/ibe/data/"] = [None, None, "corrupt"]
    job_id = submit(settings, ra=RA, dec=DEC, source="ztf", radius_arcmin=2.0)
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    third = sorted(ztf.images)[2].rsplit("/", 1)[-1]
    assert job.state == "failed" and third in job.error and "not a valid FITS" in job.error
    # Nothing half-done is kept: no cache entry, no staging folder, no raw frames.
    assert not any((settings.data_dir / "cache" / "ztf").iterdir())
    assert not (settings.job_dir(job_id) / "raw").exists()


def test_404_fails_the_job_without_retry(make_env, ztf, archive):
    settings = make_env()
    ztf.images.pop(sorted(ztf.images)[0])
    job_id = submit(settings, ra=RA, dec=DEC, source="ztf", radius_arcmin=2.0)
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    assert (
        job.state == "failed" and "404" in job.error and "/ibe/data/ztf/products/sci/" in job.error
    )
    assert archive.count("/ibe/data/") == 1


def test_full_disk_refuses_before_any_request(make_env, ztf, archive):
    settings = make_env(MIN_DISK_SPACE_GB="1e9")
    job_id = submit(settings, ra=RA, dec=DEC, source="ztf", radius_arcmin=2.0)
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    assert job.state == "failed" and "not enough free disk space" in job.error
    assert archive.count() == 0


def test_unreachable_survey_is_left_to_dramatiq_retries(make_env):
    settings = make_env(ASTROHUNTER_IRSA_URL=f"http://127.0.0.1:{closed_port()}/ibe/")
    job_id = submit(settings, ra=RA, dec=DEC, source="ztf")
    with pytest.raises(SourceUnavailable):
        run_job(job_id, stages=STAGES[:1])  # not an InputError: the actor's retries apply
    assert job_of(settings, job_id).state == "downloading"


@pytest.mark.parametrize("limit", [1, 2])
def test_requests_per_source_are_limited(archive, tmp_path, limit):
    body = _fits_bytes()
    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    def slow(path, query):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return 200, "image/fits", body

    archive.routes["/slow"] = slow

    def get(i: int) -> None:
        with Downloader(f"limited{limit}", policy=FAST, concurrency=limit) as http:
            http.download(f"{archive.url}/slow", tmp_path / f"{i}.fits")

    threads = [threading.Thread(target=get, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["most"] == limit and len(list(tmp_path.glob("*.fits"))) == 4


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_truncated_fits_file_is_rejected(tmp_path, gzipped):
    body = _fits_bytes()
    if gzipped:
        body = gzip.compress(body)
    path = tmp_path / "cut.fits"
    path.write_bytes(body[: len(body) * 2 // 3])
    with pytest.raises(InputError, match=r"cut\.fits: downloaded from http://x/cut\.fits"):
        validate_fits(path, "cut.fits", "http://x/cut.fits")
    path.write_bytes(body)
    validate_fits(path, "cut.fits", "http://x/cut.fits")
