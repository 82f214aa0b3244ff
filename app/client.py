"""``astrohunter search``: submit a search, follow it with a progress bar, fetch what it found.

It always speaks HTTP: to a running API (``--server URL``), or to the
embedded server (`app.embedded`) it starts in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from detectors import io
from detectors.score import FieldScore, score_field

from .tables import tracks_table

__all__ = ["SearchOutcome", "follow", "print_outcome", "run_search"]

FINAL = ("done", "failed", "cancelled")
#: Seconds between status polls, and the HTTP timeout of one request.
POLL_S = 0.25
HTTP_TIMEOUT_S = 30.0


@dataclass
class SearchOutcome:
    """What a finished search gave: its status, its tracks, how they compare with the truth."""

    status: dict[str, Any]
    contract: dict[str, Any] | None = None
    truth_score: FieldScore | None = None
    written: list[Path] = field(default_factory=list)


def follow(
    get_status: Callable[[], dict[str, Any]], console: Console, *, poll_s: float = POLL_S
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


def _refused(response: httpx.Response) -> str:
    """One line from a 4xx/5xx answer: the API's own words."""
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    if isinstance(detail, list):  # 422: one entry per bad field
        return "; ".join(f"{d['loc'][-1]}: {d['msg']}" for d in detail)
    return f"{response.status_code} {detail}"


def run_search(
    base_url: str,
    body: dict,
    console: Console,
    *,
    headers: dict[str, str] | None = None,
    mpc: Path | None = None,
    cutouts: Path | None = None,
) -> SearchOutcome:
    """POST the search, follow it to its end, and fetch its results.

    Parameters
    ----------
    base_url : str
        The API, e.g. ``http://127.0.0.1:8000``.
    body : dict
        The ``POST /search`` body.
    console : Console
        Where the progress bar goes.
    headers : dict, keyword-only
        Sent with every request (``X-API-Key``).
    mpc, cutouts : Path, keyword-only
        Also write the MPC report to this file, and the track pictures
        (overview and one blink strip per track) into this folder.

    Raises
    ------
    ValueError
        The API refused the search (its message, one line).
    """
    with httpx.Client(
        base_url=base_url.rstrip("/"), timeout=HTTP_TIMEOUT_S, headers=headers
    ) as http:
        r = http.post("/search", json=body)
        if r.status_code >= 400:
            raise ValueError(_refused(r))
        job_id = r.json()["job_id"]
        console.print(f"job {job_id} at {base_url}")
        status = follow(lambda: http.get(f"/status/{job_id}").raise_for_status().json(), console)
        outcome = SearchOutcome(status=status)
        if status["state"] != "done":
            return outcome
        outcome.contract = http.get(f"/jobs/{job_id}/tracks").raise_for_status().json()
        if status.get("simulated"):
            truth = http.get(f"/jobs/{job_id}/truth").raise_for_status().json()
            outcome.truth_score = score_field(outcome.contract, truth)
        if mpc is not None:
            text = http.get(f"/jobs/{job_id}/report.mpc").raise_for_status().text
            outcome.written.append(io.write_text(mpc, text))
        if cutouts is not None:
            for name in http.get(f"/jobs/{job_id}/images").raise_for_status().json():
                png = http.get(f"/jobs/{job_id}/images/{name}").raise_for_status().content
                outcome.written.append(io.write_bytes(cutouts / name, png))
        return outcome


def print_outcome(outcome: SearchOutcome, console: Console) -> None:
    """The tracks table, and for simulated data how they compare with the simulator's truth."""
    assert outcome.contract is not None
    label = " (SIMULATED DATA)" if outcome.status.get("simulated") else ""
    console.print(tracks_table(outcome.contract["tracks"], title_suffix=label))
    score = outcome.truth_score
    if score is not None:
        missed = [o for o in score.objects if not o.recovered]
        console.print(
            f"Against the simulator's truth: found {len(score.objects) - len(missed)} of "
            f"{len(score.objects)} movers, {score.false_tracks} false track(s)"
            + "".join(
                f'; missed {o.id} (SNR {o.snr:.1f}, {o.rate_arcsec_per_hour:.1f}"/h)'
                for o in missed
            )
        )
    for path in outcome.written:
        console.print(f"wrote {path}")
