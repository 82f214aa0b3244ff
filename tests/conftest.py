"""Shared test helpers: where the real data lives, and strict mode for CI.

Tests that need something outside the project (the shared real data, a
running RabbitMQ or Redis) call :func:`need`; on a user's machine without
it they skip with a message naming what is missing, and under
``ASTROHUNTER_STRICT=1`` (set by ``.ci/run``) they fail instead, so CI can
never pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from detectors.backend import gpu_available
from detectors.contract import SCHEMA_VERSION, TracksDocument, load_schema

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ASTROHUNTER_SHARED", ROOT.parent / "shared"))
STRICT = os.environ.get("ASTROHUNTER_STRICT") == "1"


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
