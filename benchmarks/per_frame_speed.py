"""Per-frame path against a by-hand script, on the same 10 x 2048^2 field in one run.

Issue 15's speed bar: AstroHunter's per-frame path (``detect --no-faint``:
register, align, difference, detect, link, fit, slow movers) in at most 8 s
wall on this machine, at least twice as fast as the single-threaded
by-hand script ``benchmarks/by_hand.py``, with at most 3 GB peak memory.
Both run as their own processes on the field ``run_benchmark.py --speed``
simulates (seed 1), alternately ``--repeats`` times (the median counts, as
other work on the machine makes single timings noisy); both are scored
against the truth. The load average is printed beside the timings.

Usage::

    python benchmarks/per_frame_speed.py [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_benchmark import (
    DEFAULT_RATE_RANGE,
    DEFAULT_SNR_RANGE,
    _detect_command,
    _machine,
    _machine_line,
    _timed_run,
    _write_field,
    console,
)

from detectors.io import write_json
from detectors.score import score_field
from detectors.simulate import simulate_field

BARS = {"wall_s": 8.0, "speedup": 2.0, "peak_memory_mb": 3072.0}
BY_HAND = Path(__file__).resolve().parent / "by_hand.py"


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def _run(name: str, cmd: list[str], tracks: Path, truth: dict, log: Path) -> dict[str, Any]:
    tracks.unlink(missing_ok=True)
    wall, rss_mb, rc = _timed_run([*cmd, "--out", str(tracks)], log=log, timeout=1800)
    if rc != 0 or not tracks.exists():
        raise SystemExit(f"{name} failed (rc={rc}); see {log}")
    doc = json.loads(tracks.read_text())
    score = score_field(doc, truth)
    return {
        "wall_s": wall,
        "peak_rss_mb": rss_mb,
        "timings_s": doc.get("run", {}).get("timings_s", {}),
        "recovered": sum(o.recovered for o in score.objects),
        "objects": len(score.objects),
        "false_tracks": score.false_tracks,
        "load": _load(),
    }


def main(argv: list[str] | None = None) -> int:
    """Time both on one field; print stages, wall, memory, objects found and the bars."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="alternate runs of each")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--objects", type=int, default=20)
    p.add_argument("--workdir", type=Path, default=Path("out/per_frame_speed"))
    p.add_argument("--command", default=None, help="detect program (default: astrohunter)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    console.print(_machine_line(_machine()))
    outdir = args.workdir.resolve() / f"s{args.seed}_2048px_10f"
    field = simulate_field(
        seed=args.seed,
        shape=(2048, 2048),
        n_frames=10,
        n_objects=args.objects,
        snr_range=DEFAULT_SNR_RANGE,
        rate_range=DEFAULT_RATE_RANGE,
    )
    frames_dir, _ = _write_field(field, outdir)
    ours = [*_detect_command(args.command), "detect", str(frames_dir), "--no-faint"]
    theirs = [sys.executable, str(BY_HAND), str(frames_dir)]
    runs: dict[str, list[dict[str, Any]]] = {"astrohunter": [], "by hand": []}
    for k in range(args.repeats):
        for name, cmd in (("astrohunter", ours), ("by hand", theirs)):
            tag = name.replace(" ", "_")
            run = _run(
                name, cmd, outdir / f"tracks_{tag}.json", field.truth, outdir / f"{tag}_{k}.log"
            )
            runs[name].append(run)
            console.print(
                f"{name} run {k + 1}: {run['wall_s']:.2f} s wall, {run['peak_rss_mb']:.0f} MB, "
                f"{run['recovered']}/{run['objects']} found, {run['false_tracks']} false; "
                f"{run['load']}"
            )
    summary = {name: _median_run(r) for name, r in runs.items()}
    _print(summary)
    if args.json:
        write_json(args.json, {"runs": runs, "summary": summary, "bars": _bars(summary)})
    return 0


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (its own stages, memory and score)."""
    return sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]


def _bars(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ours, theirs = summary["astrohunter"], summary["by hand"]
    values = {
        "wall_s": ours["wall_s"],
        "speedup": theirs["wall_s"] / ours["wall_s"],
        "peak_memory_mb": ours["peak_rss_mb"],
    }
    return {
        k: {
            "limit": BARS[k],
            "value": round(v, 2),
            "pass": v >= BARS[k] if k == "speedup" else v <= BARS[k],
        }
        for k, v in values.items()
    }


def _print(summary: dict[str, dict[str, Any]]) -> None:
    stages = list(
        dict.fromkeys(k for r in summary.values() for k in r["timings_s"] if k != "total")
    )
    table = Table(title="Per-frame path, median run: seconds per stage (each program's own)")
    table.add_column("stage")
    for name in summary:
        table.add_column(name, justify="right")
    for stage in [*stages, "total"]:
        table.add_row(
            stage,
            *(
                f"{r['timings_s'][stage]:.2f}" if stage in r["timings_s"] else "-"
                for r in summary.values()
            ),
        )
    table.add_row("wall (process)", *(f"{r['wall_s']:.2f}" for r in summary.values()))
    table.add_row("peak RSS MB", *(f"{r['peak_rss_mb']:.0f}" for r in summary.values()))
    table.add_row("found", *(f"{r['recovered']}/{r['objects']}" for r in summary.values()))
    table.add_row("false tracks", *(str(r["false_tracks"]) for r in summary.values()))
    console.print(table)
    bars = Table(title="Bars")
    for col in ("bar", "limit", "value", "result"):
        bars.add_column(col, justify="right")
    for k, b in _bars(summary).items():
        bars.add_row(k, f"{b['limit']:g}", f"{b['value']:g}", "pass" if b["pass"] else "FAIL")
    console.print(bars)


if __name__ == "__main__":
    raise SystemExit(main())
