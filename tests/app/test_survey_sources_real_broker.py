"""A search from each real survey source through the real broker, to tracks.

The surveys are the fake MAST TESScut and IRSA IBE of ``tests/sources``
(real formats, local HTTP, no network); the API and a worker for all stages
run as processes over the real RabbitMQ (a private vhost) and Redis.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from detectors.score import score_field

from ..sources.archive import (
    Archive,
    ZtfArchive,
    serve_tesscut,
    tess_field,
    tesscut_cube,
    tesscut_zip,
    ztf_field,
)
from .conftest import rabbitmq_vhost
from .test_integration import Services, _env

RA, DEC = 150.1, 20.2


@pytest.mark.parametrize("source", ["ztf", "tess"])
def test_survey_search_through_the_real_broker_finds_the_movers(tmp_path: Path, source: str):
    archive = Archive().start()
    try:
        if source == "ztf":
            sim = ztf_field(RA, DEC)
            ZtfArchive(sim, RA, DEC).serve(archive)
        else:
            sim = tess_field(RA, DEC)
            cube = tesscut_cube(sim, ra=RA, dec=DEC)
            serve_tesscut(archive, ra=RA, dec=DEC, zipped=tesscut_zip(cube, ra=RA, dec=DEC))
        with rabbitmq_vhost() as (host, vhost):
            env = _env(tmp_path, f"sqlite:///{tmp_path / 'astrohunter.db'}", host, vhost)
            env.update(
                ASTROHUNTER_TESSCUT_URL=f"{archive.url}/tesscut/api/v0.1/",
                ASTROHUNTER_IRSA_URL=f"{archive.url}/ibe/",
                ASTROHUNTER_DOWNLOAD_BACKOFF="0.01",
            )
            services = Services(tmp_path, env, vhost)
            try:
                api = services.start_api()
                services.start("worker-all", "worker", "all", "--threads", "2")
                body = {
                    "ra": RA,
                    "dec": DEC,
                    "radius_arcmin": 2.0,
                    "source": source,
                    "faint": False,
                }
                job_id = httpx.post(f"{api}/search", json=body, timeout=30).json()["job_id"]
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    status = httpx.get(f"{api}/status/{job_id}", timeout=10).json()
                    if status["state"] in ("done", "failed", "cancelled"):
                        break
                    services.check_alive()
                    time.sleep(0.5)
                assert status["state"] == "done", f"{status}\n{services.logs()}"
                assert status["simulated"] is False and status["counts"]["frames"] >= 3
                tracks = httpx.get(f"{api}/jobs/{job_id}/tracks", timeout=10).json()
            finally:
                services.stop()
    finally:
        archive.stop()
    score = score_field(tracks, sim.truth)
    bright = [o for o in score.objects if o.snr >= 8]
    assert bright and all(o.recovered for o in bright), [
        (o.id, o.snr, o.recovered) for o in score.objects
    ]
    assert score.false_tracks == 0
