"""The review page in a real browser (issue 14): a real search in embedded mode, reviewed
end to end in headless Chromium, then checked through the API, after a restart of the
server in a new process, and in the confirmed-only report.

One small simulated field (three movers) with the faint search off keeps each search to a
few seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from app.embedded import embedded_server

from ..conftest import ROOT, screenshot
from .conftest import FIELD, FINAL, free_port

#: The small field of the service tests, faint search off: a search takes seconds.
QUICK = {**FIELD, "faint": False}


def _search(http: httpx.Client, body: dict, timeout: float = 120.0) -> str:
    job_id = http.post("/search", json=body).raise_for_status().json()["job_id"]
    deadline = time.monotonic() + timeout
    while (state := http.get(f"/status/{job_id}").json()["state"]) not in FINAL:
        assert time.monotonic() < deadline, f"job {job_id} still {state}"
        time.sleep(0.1)
    assert state == "done"
    return job_id


def _reviews(base: str, job_id: str) -> dict[str, str]:
    tracks = httpx.get(f"{base}/jobs/{job_id}/tracks", timeout=10).raise_for_status().json()
    return {t["id"]: t["review"]["state"] for t in tracks["tracks"]}


def _confirmed_report_ids(base: str, job_id: str) -> list[str]:
    text = httpx.get(f"{base}/jobs/{job_id}/report.mpc?review=confirmed", timeout=10).text
    return sorted({line[5:12].strip() for line in text.splitlines() if line[:3] != "COM"})


def _check_images_loaded(page) -> int:
    """Every <img> of the page has loaded (naturalWidth > 0); returns how many there are."""
    page.wait_for_function("[...document.images].every(i => i.complete)", timeout=10_000)
    images = page.eval_on_selector_all("img", "all => all.map(i => [i.src, i.naturalWidth])")
    assert images and [src for src, width in images if not width > 0] == []
    return len(images)


def _frame_shown(page, track_id: str) -> tuple[str, str]:
    """What the blink shows now: the difference sprite's offset, and the frame caption."""
    entry = page.locator(f'[data-track-id="{track_id}"]')
    left = entry.locator("img.sprite").first.evaluate("i => getComputedStyle(i).left")
    return left, entry.locator(".caption").inner_text()


def _state(page, track_id: str) -> str:
    return page.locator(f'[data-track-id="{track_id}"]').get_attribute("data-review") or ""


def _wait_state(page, track_id: str, state: str) -> None:
    page.wait_for_selector(f'[data-track-id="{track_id}"][data-review="{state}"]', timeout=10_000)


def _serve(port: int) -> subprocess.Popen:
    """``astrohunter serve`` in a new process on this test's data (a restart of the server)."""
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(
                f"astrohunter serve did not start: {proc.communicate()[1].decode()[-2000:]}"
            )
        time.sleep(0.2)


def test_a_search_reviewed_end_to_end_in_chromium(settings, stub_broker, page):
    with embedded_server() as url, httpx.Client(base_url=url, timeout=30) as http:
        job_id = _search(http, QUICK)
        searched = time.monotonic()
        ids = sorted(_reviews(url, job_id))
        assert len(ids) == 3, ids

        page.goto(f"{url}/")
        link = page.locator(f'a[href*="{job_id}"]')
        link.wait_for(timeout=10_000)
        screenshot(page, "review-front")
        link.click()
        page.wait_for_load_state("load")
        assert page.url == f"{url}/jobs/{job_id}"

        entries = page.locator("[data-track-id]")
        assert sorted(entries.evaluate_all("all => all.map(e => e.dataset.trackId)")) == ids
        assert _check_images_loaded(page) == 1 + 3 * len(ids)  # the overview, 3 panels a track
        assert page.locator('[data-action="confirm"]').count() == len(ids)

        shown = _frame_shown(page, ids[0])
        page.wait_for_function(
            "([id, left]) => getComputedStyle(document.querySelector("
            "`[data-track-id='${id}'] img.sprite`)).left !== left",
            arg=[ids[0], shown[0]],
            timeout=5_000,
        )
        assert _frame_shown(page, ids[0]) != shown  # the blink moved on, caption too

        # By mouse: confirm the first track, reject the second.
        page.locator(f'[data-track-id="{ids[0]}"] [data-action="confirm"]').click()
        _wait_state(page, ids[0], "confirmed")
        page.locator(f'[data-track-id="{ids[1]}"] [data-action="reject"]').click()
        _wait_state(page, ids[1], "rejected")
        # By keys: the third is the next one; confirm it, then undo (back to pending).
        page.keyboard.press("j")
        page.keyboard.press("c")
        _wait_state(page, ids[2], "confirmed")
        page.keyboard.press("u")
        _wait_state(page, ids[2], "pending")
        # Pause the blink and step it by keys.
        page.keyboard.press("Space")
        before = _frame_shown(page, ids[0])
        page.keyboard.press("ArrowRight")
        assert _frame_shown(page, ids[0]) != before
        assert page.locator(".n-confirmed").inner_text() == "1"

        expected = {ids[0]: "confirmed", ids[1]: "rejected", ids[2]: "pending"}
        assert _reviews(url, job_id) == expected
        assert _confirmed_report_ids(url, job_id) == [ids[0]]
        reviewed_s = time.monotonic() - searched
        screenshot(page, "review-job-decided")

    port = free_port()
    server = _serve(port)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _reviews(base, job_id) == expected
        assert _confirmed_report_ids(base, job_id) == [ids[0]]
        page.goto(f"{base}/jobs/{job_id}")
        page.wait_for_load_state("load")
        assert {i: _state(page, i) for i in ids} == expected
        _check_images_loaded(page)
        path = screenshot(page, "review-job")  # docs/review-page.png is a copy of this one
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert page.blocked == [], page.blocked
    assert page.errors == [], page.errors
    assert reviewed_s < 60, f"reviewing took {reviewed_s:.1f} s beyond the search"
    print(f"reviewed in {reviewed_s:.1f} s beyond the search; screenshot {path}")


def test_with_an_api_key_the_page_asks_once_and_says_when_it_is_refused(
    make_env, stub_broker, page
):
    make_env(ASTROHUNTER_API_KEY="s3cret")
    with embedded_server() as url:
        page.goto(f"{url}/")
        form = page.locator("#search-form")
        for name, value in {"ra": "10", "dec": "5", "radius_arcmin": "2", "seed": "1"}.items():
            form.locator(f'[name="{name}"]').fill(value)
        form.locator('[name="source"]').select_option("simulated")
        form.locator('[name="faint"]').uncheck()

        form.locator("button[type=submit]").click()  # no key yet: the page asks
        page.locator("#key-input").fill("wrong")
        page.locator("#key-dialog button[value=ok]").click()
        page.wait_for_selector('#status[data-kind="error"]:has-text("401")', timeout=10_000)
        assert httpx.get(f"{url}/jobs", timeout=10).json()["total"] == 0

        form.locator("button[type=submit]").click()  # the refused key was forgotten: asked again
        page.locator("#key-input").fill("s3cret")
        page.locator("#key-dialog button[value=ok]").click()
        page.wait_for_selector('#status[data-kind="ok"]', timeout=10_000)
        row = page.locator("#job-rows tr[data-job-id]")
        job_id = row.get_attribute("data-job-id")
        page.wait_for_selector(f'tr[data-job-id="{job_id}"][data-state="done"]', timeout=120_000)
        page.locator(f'a[href*="{job_id}"]').click()
        page.wait_for_load_state("load")

        first = page.locator("[data-track-id]").first.get_attribute("data-track-id")
        page.keyboard.press("r")  # the key is kept: no question this time
        _wait_state(page, first, "rejected")
        assert not page.locator("#key-dialog").is_visible()
        assert _reviews(url, job_id)[first] == "rejected"
        anonymous = httpx.patch(
            f"{url}/jobs/{job_id}/tracks/{first}", json={"review": "confirmed"}, timeout=10
        )
        assert anonymous.status_code == 401
        screenshot(page, "review-job-with-key")
    assert page.blocked == [], page.blocked
    # The browser logs the one refused request; nothing else may go wrong.
    assert [e for e in page.errors if "401" not in e] == [], page.errors
