"""``/docs`` works with no network: Swagger UI's assets come from the package."""

from __future__ import annotations

import re

import httpx

from app.embedded import embedded_server

from ..conftest import screenshot


def test_docs_render_every_endpoint_offline_in_a_real_browser(settings, stub_broker, page):
    with embedded_server() as url:
        html = httpx.get(f"{url}/docs", timeout=10).text
        assert not re.search(r"(src|href)=['\"]https?://(?!127\.0\.0\.1)", html), html
        page.goto(f"{url}/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        shown = page.locator(".opblock").count()
        paths = httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
        assert shown == sum(len(ops) for ops in paths.values()), shown
        shown_paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert [p.replace("\u200b", "") for p in shown_paths].count("/jobs/{job_id}/tracks") == 1
        screenshot(page, "docs")
    assert page.blocked == [], page.blocked
    assert page.errors == [], page.errors
