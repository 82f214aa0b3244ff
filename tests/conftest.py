"""Shared test helpers: where the real data lives, and strict mode for CI.

Tests that need something outside the project (the shared real data, a
running RabbitMQ or Redis) call :func:`need`; on a user's machine without
it they skip with a message naming what is missing, and under
``ASTROHUNTER_STRICT=1`` (set by ``.ci/run``) they fail instead, so CI can
never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from detectors.backend import gpu_available
from detectors.contract import SCHEMA_VERSION, TracksDocument, load_schema

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ASTROHUNTER_SHARED", ROOT.parent / "shared"))
STRICT = os.environ.get("ASTROHUNTER_STRICT") == "1"
#: Where browser tests leave their screenshots, to be looked at (git ignores out/).
SCREENSHOTS = ROOT / "out" / "screenshots"
#: Debian's Chromium: Playwright cannot download its own browser build here.
CHROMIUM = os.environ.get("ASTROHUNTER_CHROMIUM", "/usr/bin/chromium")


def need(available: bool, what: str) -> None:
    """Skip (or, in strict mode, fail) when ``what`` is not available."""
    if available:
        return
    message = f"missing: {what}"
    if STRICT:
        pytest.fail(f"{message} (ASTROHUNTER_STRICT=1 turns this skip into a failure)")
    pytest.skip(message)


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skips the test when it is absent."""
    path = SHARED.joinpath(*parts)
    need(path.exists(), f"{path} (the shared real data; set ASTROHUNTER_SHARED to its folder)")
    return path


def check_contract(document: dict) -> None:
    """Fail unless ``document`` follows the project's tracks contract (never skipped).

    Checked twice: against the shipped JSON Schema (what other tools read) and
    through the Pydantic models it is generated from (what the API declares).
    """
    jsonschema.Draft202012Validator(load_schema()).validate(document)
    TracksDocument.model_validate(document)
    assert document["schema_version"] == SCHEMA_VERSION


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """Every array module that can run here: NumPy always, CuPy with a GPU."""
    if request.param == "numpy":
        return np
    if not gpu_available():
        pytest.skip("no CUDA device: CuPy path not tested here")
    import cupy

    return cupy


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Headless Chromium driven by Playwright, offline: nothing but 127.0.0.1 is reachable.

    Skips (fails under ASTROHUNTER_STRICT=1) without Chromium or Playwright.
    """
    need(Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None, f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "the playwright package (pip install playwright)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh browser page that may only reach 127.0.0.1 (other requests are refused and
    listed in ``page.blocked``); console errors are listed in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.blocked, page.errors = [], []

    def only_local(route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
            route.continue_()
        else:
            page.blocked.append(url)
            route.abort()

    context.route("**/*", only_local)
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under out/screenshots/ and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
