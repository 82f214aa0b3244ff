"""``astrohunter search``: submit a search, follow it with a progress bar, show its tracks.

Against a running API (``--server URL``) it speaks HTTP; without one it runs
the embedded mode: the same actors on an in-process broker, in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["follow", "print_tracks", "run_embedded", "run_remote"]

FINAL = ("done", "failed", "cancelled")


def follow(
    get_status: Callable[[], dict[str, Any]], console: Console, *, poll_s: float = 0.25
) -> dict:
    """Poll a job's status until it ends, showing state and percent."""
    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("queued", total=100)
        while True:
            status = get_status()
            bar.update(task, completed=status["percent"], description=status["state"])
            if status["state"] in FINAL:
                return status
            time.sleep(poll_s)


def print_tracks(contract: dict, status: dict, console: Console) -> None:
    tracks = contract["tracks"]
    label = " (SIMULATED DATA)" if status.get("simulated") else ""
    table = Table(title=f"{len(tracks)} moving object(s) found{label}")
    for col in ("id", "obs", 'rate "/h', "PA deg", "mag", "stacked SNR", "RA", "Dec"):
        table.add_column(col, justify="right")
    for t in tracks:
        first = t["observations"][0]
        mag = first.get("mag")
        table.add_row(
            t["id"],
            str(len(t["observations"])),
            f"{t['rate_arcsec_per_hour']:.2f}",
            f"{t['position_angle_deg']:.1f}",
            "-" if mag is None else f"{mag:.2f}",
            f"{t['stacked_snr']:.1f}",
            f"{first['ra']:.5f}",
            f"{first['dec']:+.5f}",
        )
    console.print(table)


def _auth() -> dict[str, str]:
    """The ``X-API-Key`` header when ``ASTROHUNTER_API_KEY`` is set."""
    from .config import get_settings

    key = get_settings().api_key
    return {"X-API-Key": key} if key else {}


def _submit_and_follow(
    http: httpx.Client, body: dict, console: Console, where: str
) -> tuple[dict, dict]:
    """POST the search, follow its status to the end, fetch its tracks.

    ``http`` is any httpx client: one speaking to a server, or FastAPI's
    in-process test client for the embedded mode.
    """
    r = http.post("/search", json=body)
    if r.status_code == 422:
        details = r.json().get("detail", [])
        raise ValueError("; ".join(f"{d['loc'][-1]}: {d['msg']}" for d in details) or r.text)
    r.raise_for_status()
    job_id = r.json()["job_id"]
    console.print(f"job {job_id} {where}")
    status = follow(lambda: http.get(f"/status/{job_id}").raise_for_status().json(), console)
    contract = http.get(f"/jobs/{job_id}/tracks").raise_for_status().json()
    return status, contract


def run_remote(server: str, body: dict, console: Console) -> tuple[dict, dict]:
    """Submit to a running API and follow the job; returns (status, tracks contract)."""
    with httpx.Client(base_url=server.rstrip("/"), timeout=30.0, headers=_auth()) as http:
        return _submit_and_follow(http, body, console, f"at {server}")


def run_embedded(body: dict, console: Console, *, threads: int = 2) -> tuple[dict, dict]:
    """Run the search in this process on the in-process broker; returns (status, contract)."""
    from dramatiq import Worker
    from fastapi.testclient import TestClient  # the real app and routes, without a socket

    from .api.main import create_app
    from .broker import broker

    worker = Worker(broker, worker_threads=threads)
    worker.start()
    try:
        with TestClient(create_app(), headers=_auth()) as http:
            where = f"(embedded: in-process broker, {threads} worker threads)"
            return _submit_and_follow(http, body, console, where)
    finally:
        worker.stop()
