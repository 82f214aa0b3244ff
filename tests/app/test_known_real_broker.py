"""A search with ``observatory`` and ``known`` through the real RabbitMQ: (5945) by name.

The API and one worker per stage run as processes on the RabbitMQ and Redis
of this machine; the frames are the real Lowell sequence read in place by
the ``local`` source, the catalogue its MPCORB line, and the reports are
written from the deployment's settings (measurer, telescope, submitter).
"""

from __future__ import annotations

import httpx

from ..conftest import check_contract, shared_path
from ..detectors.known_helpers import LOWELL
from .conftest import FINAL, rabbitmq_vhost
from .test_integration import Services, _env, _need_broker_and_redis, follow, submit


def test_observatory_and_known_through_the_real_broker(tmp_path):
    _need_broker_and_redis()
    folder = shared_path(*LOWELL)
    with rabbitmq_vhost() as (host, vhost):
        env = _env(tmp_path, f"sqlite:///{tmp_path / 'data' / 'ah.db'}", host, vhost)
        env.update(
            ASTROHUNTER_LOCAL_ROOTS=str(folder),
            ASTROHUNTER_ORBITS=str(folder / "mpcorb_5945.dat"),
            ASTROHUNTER_MEASURERS="A. Tester",
            ASTROHUNTER_SUBMITTER="A. Tester",
            ASTROHUNTER_TELESCOPE_DESIGN="Reflector",
            ASTROHUNTER_TELESCOPE_APERTURE="1.07",
        )
        services = Services(tmp_path, env, vhost)
        try:
            for stage in ("download", "data", "fast_detect", "detailed_detect"):
                services.start(f"worker-{stage}", "worker", stage)
            services.start_api()
            body = {
                "ra": 124.63,
                "dec": 25.336,
                "source": "local",
                "path": str(folder / "frames"),
                "rate_min": 2.0,
                "rate_max": 20.0,
                "faint": False,
                "observatory": "688",
                "known": "mpcorb",
            }
            with httpx.Client(base_url=services.api_url, timeout=30) as http:
                job_id = submit(services, http, body)["job_id"]
                status, _ = follow(services, http, job_id)
                assert status["state"] == "done", f"{status}\n{services.logs()}"
                doc = http.get(f"/jobs/{job_id}/tracks").raise_for_status().json()
                check_contract(doc)
                (track,) = doc["tracks"]
                assert track["known_object"] == "(5945) Roachapproach", track
                assert doc["run"]["known"]["observatory_code"] == "688"
                assert doc["run"]["known"]["site"] is not None
                mpc = http.get(f"/jobs/{job_id}/report.mpc").raise_for_status().text
                assert mpc.startswith("COD 688\n") and "\n05945 " in mpc
                psv = http.get(f"/jobs/{job_id}/report.psv").raise_for_status().text
                assert "! mpcCode 688" in psv and "\n5945 " in psv
        finally:
            services.stop()
    assert status["state"] in FINAL
