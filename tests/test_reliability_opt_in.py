"""The reliability tests stop the local RabbitMQ and Redis, so they run only when asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reliability_tests_skip_unless_opted_in():
    env = {k: v for k, v in os.environ.items() if k not in ("ASTROHUNTER_RELIABILITY",)}
    env["ASTROHUNTER_STRICT"] = "1"  # opting out is not a missing service: no failure
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/reliability",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" not in done.stdout and " failed" not in done.stdout, done.stdout
    assert "set ASTROHUNTER_RELIABILITY=1 to run them" in done.stdout
