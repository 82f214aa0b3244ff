"""A finished job's pictures over real HTTP: the review sheets written by the search,
each track's blink strip cut from them when first asked for (`app.pictures`)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from app.embedded import embedded_server
from detectors.cutouts import LABEL_HEIGHT

from .conftest import FIELD, FINAL


@pytest.fixture
def server(settings, stub_broker) -> Iterator[httpx.Client]:
    """An HTTP client of the embedded server (fresh SQLite, in-process broker)."""
    with embedded_server(threads=2) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def _done(http: httpx.Client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while (status := http.get(f"/status/{job_id}").raise_for_status().json())["state"] not in FINAL:
        assert time.monotonic() < deadline, f"job still {status['state']}"
        time.sleep(0.1)
    assert status["state"] == "done", status
    return status


def test_each_tracks_strip_is_made_when_first_asked_for(server, settings):
    job_id = server.post("/search", json=FIELD).raise_for_status().json()["job_id"]
    status = _done(server, job_id)
    doc = server.get(f"/jobs/{job_id}/tracks").raise_for_status().json()
    tracks = doc["tracks"]
    assert tracks, "the field has movers"
    folder = settings.job_dir(job_id) / "results" / "images"
    names = server.get(f"/jobs/{job_id}/images").raise_for_status().json()
    strips = [f"{t['id']}.png" for t in tracks]
    assert {"overview.png", "field.png", "stamps-0.png", *strips} <= set(names)
    # The search drew the sheets, not the strips.
    assert all(not (folder / name).exists() for name in strips)
    assert doc["run"]["timings_s"]["pictures"] > 0

    first = server.get(f"/jobs/{job_id}/images/{strips[0]}")
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    strip = np.asarray(Image.open(io.BytesIO(first.content)).convert("RGB"))
    n = status["counts"]["frames"]
    assert strip.shape == (41 * 4 + LABEL_HEIGHT, (n + 1) * 41 * 4 + 2 * n, 3)
    assert strip[:LABEL_HEIGHT].std() > 0  # the label band holds text
    assert (folder / strips[0]).is_file()  # kept: the next request is a file
    assert server.get(f"/jobs/{job_id}/images/{strips[0]}").content == first.content

    for name in ("AH99999.png", "stamps-9.png", "..%2Freview.json"):
        assert server.get(f"/jobs/{job_id}/images/{name}").status_code == 404, name
