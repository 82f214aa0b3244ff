"""Measure ``astrohunter detect`` by BENCHMARK.md: quality on simulated fields, and speed.

Each field is simulated with `detectors.simulate.simulate_field`, written to
``WORKDIR/<field>/frames/`` (truth beside it, in ``truth.json``), searched by
``astrohunter detect <frames> --out <tracks.json> --no-faint`` in a separate
process whose wall time and peak RSS are measured, and scored with
`detectors.score`. Run from the repository root with the venv active::

    python benchmarks/run_benchmark.py                        # 5 fields, 1024^2 x 10
    python benchmarks/run_benchmark.py --speed                # one 2048^2 x 10 field
    python benchmarks/run_benchmark.py --faint --detect-args="--device gpu" --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `detectors` importable

from detectors.io import write_fits, write_json  # noqa: E402
from detectors.score import FieldScore, score_field, summarize  # noqa: E402
from detectors.simulate import SimulatedField, simulate_field  # noqa: E402

BARS = {
    "completeness_snr_ge_5": 0.95,
    "completeness_snr_4_5": 0.70,
    "false_tracks_per_field": 0.5,
    "rms_arcsec_snr_ge_10": 0.3,
    "speed_2048x10_s": 15.0,
    "peak_memory_mb": 4096.0,
}
# BENCHMARK.md's stages, from the keys of run.timings_s.
STAGES = {
    "load+align": ("load", "align"),
    "difference+detect": ("difference", "detect"),
    "link": ("link",),
    "fit/verify": ("fit", "verify"),
    "faint search": ("faint_search",),
}
SCHEMAS = (
    ROOT / "contracts/tracks.schema.json",
    ROOT.parent / "shared/contracts/tracks.schema.json",
)

console = Console(width=None if sys.stdout.isatty() else 132)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 when a detect run failed, else 0."""
    args = _parser().parse_args(argv)
    if args.speed:
        args.size, args.frames, args.seeds = 2048, 10, args.seeds[:1]
    command = _detect_command(args.command)
    tail = ([] if args.faint else ["--no-faint"]) + shlex.split(args.detect_args)
    shown = [*command, "detect", "<frames>", "--out", "<tracks.json>", *tail]
    workdir = args.workdir.resolve()
    machine = _machine()
    console.print(_machine_line(machine))
    console.print(f"command: {shlex.join(shown)}")

    runs, scores = [], []
    for seed in args.seeds:
        run, score = _run_field(seed, args=args, command=command, tail=tail, workdir=workdir)
        runs.append(run)
        if score is not None:
            scores.append(score)
        status = "ok" if run["ok"] else f"[red]FAILED rc={run['returncode']}[/]"
        console.print(
            f"seed {seed}: {status}, {run['wall_s']:.2f} s, {run['peak_rss_mb']:.0f} MB, "
            f"{run.get('n_tracks', 0)} tracks"
        )
        if not run["ok"]:
            console.print(f"[red]{run['log_tail']}[/]")

    summary = summarize(scores) if scores else None
    bars = _bars(summary, runs, speed=args.speed)
    _print_report(runs, scores, summary, bars)
    if args.json:
        write_json(
            args.json,
            {
                "machine": machine,
                "mode": "speed" if args.speed else "quality",
                "settings": {
                    "seeds": args.seeds,
                    "size": args.size,
                    "frames": args.frames,
                    "objects": args.objects,
                    "command": shown,
                },
                "fields": runs,
                "summary": summary,
                "bars": bars,
            },
        )
        console.print(f"summary written to {args.json}")
    return 0 if all(run["ok"] for run in runs) else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="one field each")
    p.add_argument("--size", type=int, default=1024, help="frame width and height, pixels")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--objects", type=int, default=20, help="moving objects per field")
    p.add_argument("--snr-range", type=float, nargs=2, default=(2.0, 12.0))
    p.add_argument("--rate-range", type=float, nargs=2, default=(1.0, 150.0))
    p.add_argument("--workdir", type=Path, default=ROOT / "benchmarks/results/work")
    p.add_argument("--speed", action="store_true", help="one 2048^2 x 10 field (first seed)")
    p.add_argument("--faint", action="store_true", help="run the faint search (omit --no-faint)")
    p.add_argument("--detect-args", default="", help="extra arguments for detect, one string")
    p.add_argument("--command", default=None, help="detect program (default: astrohunter)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per field")
    p.add_argument("--json", type=Path, help="write the summary here")
    return p


def _detect_command(command: str | None) -> list[str]:
    """``astrohunter`` from PATH or this venv, else ``python -m app.cli`` in the repo."""
    if command:
        return shlex.split(command)
    found = shutil.which("astrohunter") or shutil.which(
        "astrohunter", path=str(Path(sys.executable).parent)
    )
    return [found] if found else [sys.executable, "-m", "app.cli"]


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    gpu = "none"
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
        out = subprocess.run(query, capture_output=True, text=True, check=False, timeout=30)
        gpu = ", ".join(out.stdout.split("\n")[:-1]) or "none"
    return {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "memory_gb": mem_gb,
        "gpu": gpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _machine_line(m: dict[str, Any]) -> str:
    return (
        f"machine: {m['cores']} cores ({m['cores_usable']} usable), {m['cpu']}, "
        f"{m['memory_gb']} GB RAM, GPU: {m['gpu']}"
    )


def _write_field(field: SimulatedField, outdir: Path) -> tuple[Path, Path]:
    """Frames in ``outdir/frames/``, truth in ``outdir/truth.json`` (never with the frames)."""
    frames_dir = outdir / "frames"
    if frames_dir.exists():
        shutil.rmtree(frames_dir)  # no stale frames from a run with other settings
    for name, data, header in field.frames:
        write_fits(frames_dir / name, data, header)
    return frames_dir, write_json(outdir / "truth.json", field.truth)


def _run_field(
    seed: int, *, args: argparse.Namespace, command: list[str], tail: list[str], workdir: Path
) -> tuple[dict[str, Any], FieldScore | None]:
    """Simulate, write, detect (timed) and score one field."""
    outdir = workdir / f"s{seed}_{args.size}px_{args.frames}f"
    field = simulate_field(
        seed=seed,
        shape=(args.size, args.size),
        n_frames=args.frames,
        n_objects=args.objects,
        snr_range=tuple(args.snr_range),
        rate_range=tuple(args.rate_range),
    )
    frames_dir, _ = _write_field(field, outdir)
    tracks_path = outdir / "tracks.json"
    tracks_path.unlink(missing_ok=True)
    cmd = [*command, "detect", str(frames_dir), "--out", str(tracks_path), *tail]
    wall, rss_mb, rc = _timed_run(cmd, log=outdir / "detect.log", timeout=args.timeout)
    run: dict[str, Any] = {
        "seed": seed,
        "frames": args.frames,
        "size": args.size,
        "ok": rc == 0 and tracks_path.exists(),
        "returncode": rc,
        "wall_s": wall,
        "frames_per_s": args.frames / wall if wall > 0 else None,
        "peak_rss_mb": rss_mb,
        "workdir": str(outdir),
    }
    if not run["ok"]:
        run["log_tail"] = "\n".join((outdir / "detect.log").read_text().splitlines()[-15:])
        return run, None
    tracks = json.loads(tracks_path.read_text())
    block = tracks.get("run", {})
    run.update(
        n_tracks=len(tracks.get("tracks", [])),
        schema_errors=_schema_errors(tracks),
        device=block.get("device"),
        timings_s=block.get("timings_s", {}),
        run_peak_memory_mb=block.get("peak_memory_mb"),
        trajectories_tested=block.get("trajectories_tested"),
    )
    run["stages_s"] = {
        stage: sum(run["timings_s"][k] for k in keys if k in run["timings_s"])
        for stage, keys in STAGES.items()
        if any(k in run["timings_s"] for k in keys)
    }
    faint_s = run["timings_s"].get("faint_search")
    if run["trajectories_tested"] and faint_s:
        run["trajectories_per_s"] = run["trajectories_tested"] / faint_s
    score = score_field(tracks, field.truth)
    run["summary"] = summarize([score])
    return run, score


# Measures from a small process: a child's ru_maxrss starts at its parent's
# RSS at fork time and survives exec, so spawning detect straight from this
# (large) process would report our memory, not detect's.
_TRAMPOLINE = """import os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{time.perf_counter() - t0} {usage.ru_maxrss}")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def _timed_run(cmd: list[str], *, log: Path, timeout: float) -> tuple[float, float, int]:
    """Run ``cmd``; return wall seconds, peak RSS (MB) and exit code (-9 on timeout)."""
    measure = log.with_suffix(".measure")
    measure.unlink(missing_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(measure), *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # its own process group, so a timeout kills detect too
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return timeout, 0.0, -9
    if not measure.exists():
        return 0.0, 0.0, proc.returncode
    wall, maxrss_kib = measure.read_text().split()
    return float(wall), int(maxrss_kib) / 1024.0, proc.returncode  # Linux: ru_maxrss in KiB


def _schema_errors(tracks: dict[str, Any]) -> list[str]:
    schema_path = next((p for p in SCHEMAS if p.exists()), None)
    if schema_path is None:
        return []
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(tracks)][
        :10
    ]


def _bars(
    summary: dict[str, Any] | None, runs: list[dict[str, Any]], *, speed: bool
) -> list[dict[str, Any]]:
    """Pass/fail against the project's bars; None where this mode does not measure it."""
    bin45 = next((b for b in summary["snr_bins"] if b["label"] == "4-5"), None) if summary else None
    ok_runs = [r for r in runs if r["ok"]]
    values = {
        "completeness_snr_ge_5": None if speed or not summary else summary["completeness_snr_ge_5"],
        "completeness_snr_4_5": None if speed or not bin45 else bin45["completeness"],
        "false_tracks_per_field": None
        if speed or not summary
        else summary["false_tracks_per_field"],
        "rms_arcsec_snr_ge_10": None
        if speed or not summary
        else summary["astrometric_rms_arcsec_snr_ge_10"],
        "speed_2048x10_s": max((r["wall_s"] for r in ok_runs), default=None) if speed else None,
        "peak_memory_mb": max((r["peak_rss_mb"] for r in ok_runs), default=None),
    }
    at_least = {"completeness_snr_ge_5", "completeness_snr_4_5"}
    out = []
    for name, limit in BARS.items():
        value = values[name]
        passed = None if value is None else (value >= limit if name in at_least else value <= limit)
        out.append({"bar": name, "limit": limit, "value": value, "pass": passed})
    return out


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _print_report(
    runs: list[dict[str, Any]],
    scores: list[FieldScore],
    summary: dict[str, Any] | None,
    bars: list[dict[str, Any]],
) -> None:
    good = [r for r in runs if r["ok"]]
    fields = Table(title="Fields")
    for col in (
        "seed",
        "objects",
        "tracks",
        "recovered",
        "false",
        "dup",
        "wall s",
        "frames/s",
        "peak RSS MB",
        "run peak MB",
        "device",
        "contract",
    ):
        fields.add_column(col, justify="right")
    for run, score in zip(good, scores, strict=True):
        fields.add_row(
            str(run["seed"]),
            str(len(score.objects)),
            str(run["n_tracks"]),
            str(int(score.recovered.sum())),
            str(score.false_tracks),
            str(score.duplicates),
            _fmt(run["wall_s"]),
            _fmt(run["frames_per_s"]),
            _fmt(run["peak_rss_mb"], ".0f"),
            _fmt(run["run_peak_memory_mb"], ".0f"),
            str(run["device"]),
            "ok" if not run["schema_errors"] else f"[red]{len(run['schema_errors'])} errors[/]",
        )
    console.print(fields)
    for run in good:
        for err in run["schema_errors"]:
            console.print(f"[red]seed {run['seed']} contract: {err}[/]")
    if summary is None:
        console.print("[red]no field was searched successfully[/]")
    else:
        table = Table(title="Completeness by per-frame SNR (recovered/present)")
        table.add_column("SNR", justify="right")
        for run in good:
            table.add_column(f"seed {run['seed']}", justify="right")
        table.add_column("all", justify="right")
        table.add_column("%", justify="right")
        for i, b in enumerate(summary["snr_bins"]):
            per_field = [run["summary"]["snr_bins"][i] for run in good]
            table.add_row(
                b["label"],
                *(f"{f['recovered']}/{f['present']}" for f in per_field),
                f"{b['recovered']}/{b['present']}",
                _fmt(_pct(b["completeness"]), ".0f"),
            )
        console.print(table)
        bound = {"below": " (<= lowest bin)", "above": " (never reached)"}.get(
            summary["snr_at_50pct_bound"], ""
        )
        console.print(
            f"SNR at 50% completeness: {_fmt(summary['snr_at_50pct'])}{bound}; "
            f"false tracks/field {_fmt(summary['false_tracks_per_field'])}, "
            f"duplicates/field {_fmt(summary['duplicates_per_field'])}; astrometric RMS "
            f'{_fmt(summary["astrometric_rms_arcsec"], ".3f")}" (all matched, '
            f"{summary['n_matched_observations']} obs), "
            f'{_fmt(summary["astrometric_rms_arcsec_snr_ge_10"], ".3f")}" (SNR >= 10)'
        )
    stages = list(dict.fromkeys(k for run in good for k in run["timings_s"]))
    if stages:
        timing = Table(title="Wall seconds per stage (from run.timings_s)")
        timing.add_column("stage")
        for run in good:
            timing.add_column(f"seed {run['seed']}", justify="right")
        timing.add_column("mean", justify="right")
        for stage in stages:
            values = [run["timings_s"].get(stage) for run in good]
            known = [v for v in values if v is not None]
            timing.add_row(stage, *(_fmt(v) for v in values), _fmt(sum(known) / len(known)))
        console.print(timing)
        means = {
            stage: sum(run["stages_s"].get(stage, 0.0) for run in good) / len(good)
            for stage in STAGES
        }
        console.print(
            "BENCHMARK stages, mean wall s per field: "
            + ", ".join(f"{stage} {value:.2f}" for stage, value in means.items())
        )
    for run in good:
        if run.get("trajectories_per_s"):
            console.print(f"seed {run['seed']}: {run['trajectories_per_s']:.3g} trajectories/s")
    verdict = Table(title="Bars")
    for col in ("bar", "limit", "value", "result"):
        verdict.add_column(col, justify="right")
    for bar in bars:
        result = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "n/a"}[bar["pass"]]
        verdict.add_row(bar["bar"], f"{bar['limit']:g}", _fmt(bar["value"], ".3g"), result)
    console.print(verdict)


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction


if __name__ == "__main__":
    sys.exit(main())
