"""Measure ``astrohunter detect`` by BENCHMARK.md: quality on simulated fields, and speed.

Each field is simulated with `detectors.simulate.simulate_field`, written to
``WORKDIR/<field>/frames/`` (truth beside it, in ``truth.json``), searched by
``astrohunter detect <frames> --out <tracks.json> --no-faint`` in a separate
process whose wall time and peak RSS are measured, and scored with
`detectors.score`. Run from the repository root with the venv active::

    python benchmarks/run_benchmark.py                        # 5 fields, 1024^2 x 10
    python benchmarks/run_benchmark.py --speed                # one 2048^2 x 10 field
    python benchmarks/run_benchmark.py --faint --detect-args="--device gpu" --json out.json
    python benchmarks/run_benchmark.py --depth                # faint-search depth, 1024^2 x 10
    python benchmarks/run_benchmark.py --speed --faint        # faint search on 2048^2 x 10

``--warm-pixels``, ``--drift``, ``--jumps`` and ``--wcs-error`` give the fields
what real sequences have (issue "Real sequences: warm pixels, drifting
pointings, rough or missing WCS"; `detectors.simulate.RealTraits`);
``--traits`` runs the same seeds without them, with each alone and with all
together, and prints false tracks per field and completeness at SNR >= 5 for
each; ``--smallsat`` makes the fields look like a small space telescope's
sequence (1078 x ~712 px, 3"/px, 25 frames of 65 s in three blocks over about
111 min, every trait on, ``EXPOSURE`` instead of ``EXPTIME``)::

    python benchmarks/run_benchmark.py --traits --seeds 1 2 3 4 5
    python benchmarks/run_benchmark.py --warm-pixels --drift --jumps --wcs-error
    python benchmarks/run_benchmark.py --smallsat --seeds 1 2 3

``--depth`` follows the issue "Faint search: synthetic tracking to the sqrt(N)
limit": objects at per-frame SNR 1.5-6 and 1-60 arcsec/hour (``--snr-range``,
``--rate-range``), the faint search on and told that rate range
(``--rate-min``/``--rate-max``); it adds completeness in finer SNR bins next to
an ideal search's (findable when ``SNR * sqrt(N) >= --ideal-threshold``), the
SNR at 50 % of both, completeness by rate, and the faint search's
trajectories per second. When a GPU is available (and ``--no-gpu`` is not
given) the same fields are searched again with ``--device gpu``.

``--template K`` (issue "Depth and speed: templates from another night")
also simulates K frames of each field from the night before (pointing off by
a few pixels, rotated, the movers where they were then; `TemplateNight`) and
passes them to ``detect --template``; the depth report then adds, per rate
class, the SNR at 50 % completeness beside an ideal stack's with that
template (`template_efficiency`: the template's noise is common to every
frame, so it adds coherently along a slow motion) and the same-night ideal::

    python benchmarks/run_benchmark.py --depth --template 10 --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `detectors` importable

from detectors.backend import gpu_available  # noqa: E402
from detectors.contract import load_schema  # noqa: E402
from detectors.io import write_fits, write_json  # noqa: E402
from detectors.score import (  # noqa: E402
    DEPTH_SNR_BINS,
    FieldScore,
    completeness_by,
    score_field,
    snr_at_50pct,
    summarize,
)
from detectors.simulate import (  # noqa: E402
    RealTraits,
    SimulatedField,
    TemplateNight,
    simulate_field,
)

BARS = {
    "completeness_snr_ge_5": 0.95,
    "completeness_snr_4_5": 0.70,
    "false_tracks_per_field": 0.5,
    "rms_arcsec_snr_ge_10": 0.3,
    "speed_2048x10_s": 15.0,
    "peak_memory_mb": 4096.0,
}
# --depth: the faint search on, objects at per-frame SNR 1.5-6 and 1-60 arcsec/hour.
DEPTH_BARS = {
    "completeness_snr_ge_5": 0.95,
    "completeness_snr_4_5": 0.70,
    "false_tracks_per_field": 1.0,
    "trajectories_per_s": 2e8,
    "peak_memory_mb": 6144.0,
}
# --speed --faint: BARS plus the faint search's own.
SPEED_FAINT_BARS = {**BARS, "faint_search_2048x10_s": 60.0, "trajectories_per_s": 2e8}
AT_LEAST = {"completeness_snr_ge_5", "completeness_snr_4_5", "trajectories_per_s"}
DEFAULT_SNR_RANGE, DEFAULT_RATE_RANGE = (2.0, 12.0), (1.0, 150.0)
DEPTH_SNR_RANGE, DEPTH_RATE_RANGE = (1.5, 6.0), (1.0, 60.0)
DEPTH_RATE_EDGES = (4.0, 15.0)  # slow movers self-subtract from a median template
# --template K: the night before, pointed a little off and turned (within the stars drawn).
TEMPLATE_NIGHT = {"days": -1.0, "offset_px": (7.0, -5.0), "rotation_deg": 0.2}
# --depth --template: per-frame SNR at 50 % in every rate class.
TEMPLATE_BARS = {"snr_at_50pct_per_rate_class": 2.5, "false_tracks_per_field": 1.0}
# BENCHMARK.md's stages, from the keys of run.timings_s.
STAGES = {
    "load+align": ("load", "align"),
    "difference+detect": ("difference", "detect"),
    "link": ("link",),
    "fit/verify": ("fit", "verify", "faint_verify"),
    "faint search": ("faint_search",),
}

# --warm-pixels, --drift, --jumps, --wcs-error: the issue's "Bars" (2' jumps at the field's scale).
TRAITS = {
    "warm_pixels": {"warm_pixel_fraction": 3e-4},
    "drift": {"drift_px_per_hour": 30.0},
    "jumps": {"blocks": 3, "block_gap_min": 30.0, "jump_arcsec": 120.0},
    "wcs_error": {"wcs_error_px": 3.0},
}
# A drifting (unguided) pointing moves smoothly: no dithers of +-5 px on top.
SMOOTH_DITHER_PX = 0.5
TRAITS_BARS = {"false_tracks_per_field": 0.5, "completeness_snr_ge_5_loss_points": 2.0}
# --smallsat: the sequence the issue describes (a small telescope in space).
SMALLSAT = {
    "shape": (712, 1078),
    "n_frames": 25,
    "pixel_scale_arcsec": 3.0,
    "exptime_s": 65.0,
    "cadence_min": 1.5,
    "fwhm_range_px": (1.8, 2.4),
    "dither_px": 0.5,
    "traits": {
        "warm_pixel_fraction": 1e-3,
        "drift_px_per_hour": 20.0,
        "blocks": 3,
        "block_gap_min": 37.0,
        "jump_arcsec": 120.0,
        "wcs_error_px": 2.0,
        "exposure_keyword": "EXPOSURE",
        "height_loss_rows": 4,
    },
}

console = Console(width=None if sys.stdout.isatty() else 132)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 when a detect run failed, else 0."""
    args = _parser().parse_args(argv)
    if args.speed:
        args.size, args.frames, args.seeds = 2048, 10, args.seeds[:1]
    if args.depth:
        args.faint = True
    if args.snr_range is None:
        args.snr_range = DEPTH_SNR_RANGE if args.depth else DEFAULT_SNR_RANGE
    if args.rate_range is None:
        args.rate_range = DEPTH_RATE_RANGE if args.depth else DEFAULT_RATE_RANGE
    command = _detect_command(args.command)
    tail = ([] if args.faint else ["--no-faint"]) + shlex.split(args.detect_args)
    if args.smallsat:
        args.frames = SMALLSAT["n_frames"]
    if args.depth:  # search exactly the simulated rates
        lo, hi = args.rate_range
        tail += ["--rate-min", f"{lo:g}", "--rate-max", f"{hi:g}"]
    shown = [*command, "detect", "<frames>", "--out", "<tracks.json>", *tail]
    workdir = args.workdir.resolve()
    machine = _machine()
    console.print(_machine_line(machine))
    console.print(f"command: {shlex.join(shown)}")
    # The same fields again on the GPU, where there is one (depth and faint-speed runs).
    gpu_tail = None
    if (args.depth or (args.speed and args.faint)) and not args.no_gpu:
        if "--device" in tail:
            console.print("GPU pass skipped: --detect-args already sets --device")
        elif gpu_available():
            gpu_tail = [*tail, "--device", "gpu"]
            console.print(f"GPU pass: the same fields with {shlex.join(gpu_tail[-2:])}")
        else:
            console.print("GPU pass: none (detectors.backend.gpu_available() is False)")
    if args.depth:
        console.print(_depth_line(args))
    if args.traits:
        return _traits_comparison(args, command=command, tail=tail, workdir=workdir)

    runs, scores, gpu_runs, gpu_scores = [], [], [], []
    for seed in args.seeds:
        run, score = _run_field(seed, args=args, command=command, tail=tail, workdir=workdir)
        runs.append(run)
        if score is not None:
            scores.append(score)
        _print_run_line(f"seed {seed}", run)
        if gpu_tail is not None:
            run, score = _rerun_field(run, args=args, command=command, tail=gpu_tail, tag="gpu")
            gpu_runs.append(run)
            if score is not None:
                gpu_scores.append(score)
            _print_run_line(f"seed {seed} gpu", run)

    summary = summarize(scores) if scores else None
    limits = DEPTH_BARS if args.depth else SPEED_FAINT_BARS if args.speed and args.faint else BARS
    bars = _bars(summary, runs, speed=args.speed, limits=limits)
    gpu_summary = summarize(gpu_scores) if gpu_scores else None
    gpu_bars = None
    if gpu_tail is not None:
        gpu_bars = _bars(gpu_summary, gpu_runs, speed=args.speed, limits=limits)
    depth = None
    if args.depth:
        gpu = (gpu_runs, gpu_scores) if gpu_tail is not None else None
        depth = _depth_figures(args, runs, scores, gpu)
    _print_report(runs, scores, summary, bars, depth=depth, gpu_bars=gpu_bars)
    if args.speed and args.faint:
        _print_speed_faint(runs, gpu_runs if gpu_tail is not None else None)
    if args.json:
        report: dict[str, Any] = {
            "machine": machine,
            "mode": "depth" if args.depth else "speed" if args.speed else "quality",
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
        }
        if args.depth or (args.speed and args.faint) or gpu_tail is not None:
            report["settings"].update(
                snr_range=list(args.snr_range),
                rate_range=list(args.rate_range),
                faint=args.faint,
                ideal_threshold=args.ideal_threshold,
            )
        if depth is not None:
            report["depth"] = depth
        if gpu_tail is not None:
            report["gpu"] = {
                "command": [*command, "detect", "<frames>", "--out", "<tracks.json>", *gpu_tail],
                "fields": gpu_runs,
                "summary": gpu_summary,
                "bars": gpu_bars,
            }
        write_json(args.json, report)
        console.print(f"summary written to {args.json}")
    return 0 if all(run["ok"] for run in [*runs, *gpu_runs]) else 1


def _print_run_line(name: str, run: dict[str, Any]) -> None:
    status = "ok" if run["ok"] else f"[red]FAILED rc={run['returncode']}[/]"
    console.print(
        f"{name}: {status}, {run['wall_s']:.2f} s, {run['peak_rss_mb']:.0f} MB, "
        f"{run.get('n_tracks', 0)} tracks"
    )
    if not run["ok"]:
        console.print(f"[red]{run['log_tail']}[/]")


def _depth_line(args: argparse.Namespace) -> str:
    limit = args.ideal_threshold / args.frames**0.5
    return (
        f"depth: {len(args.seeds)} field(s) of {args.size}x{args.size} x {args.frames} frames, "
        f"{args.objects} objects each at per-frame SNR {args.snr_range[0]:g}-"
        f'{args.snr_range[1]:g}, {args.rate_range[0]:g}-{args.rate_range[1]:g} "/h; '
        f"ideal search: SNR*sqrt({args.frames}) >= {args.ideal_threshold:g}, "
        f"i.e. per-frame SNR >= {limit:.2f}"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="one field each")
    p.add_argument("--size", type=int, default=1024, help="frame width and height, pixels")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--objects", type=int, default=20, help="moving objects per field")
    p.add_argument(
        "--snr-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help="objects' per-frame SNR, simulated uniformly (2 12; with --depth 1.5 6)",
    )
    p.add_argument(
        "--rate-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help="objects' rates, arcsec/h, log-uniform (1 150; with --depth 1 60, also searched)",
    )
    p.add_argument("--workdir", type=Path, default=ROOT / "benchmarks/results/work")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--speed", action="store_true", help="one 2048^2 x 10 field (first seed)")
    mode.add_argument(
        "--depth",
        action="store_true",
        help="faint-search depth: faint search on, SNR 1.5-6, 1-60 arcsec/h searched exactly",
    )
    p.add_argument("--faint", action="store_true", help="run the faint search (omit --no-faint)")
    p.add_argument(
        "--template",
        type=int,
        default=0,
        metavar="K",
        help="also simulate K frames of each field from the night before and search with "
        "detect --template (0: none, the same-night template)",
    )
    real = p.add_argument_group("real-sequence traits (detectors.simulate.RealTraits)")
    real.add_argument(
        "--warm-pixels", action="store_true", help="3 warm pixels per 1e4 at 3-30 sigma"
    )
    real.add_argument("--drift", action="store_true", help="pointing drifts 30 px/h")
    real.add_argument(
        "--jumps", action="store_true", help="three blocks 30 min apart, 2' jumps between them"
    )
    real.add_argument("--wcs-error", action="store_true", help="header WCS off by 3 px")
    real.add_argument(
        "--traits",
        action="store_true",
        help="the same seeds without traits, with each alone and with all: false tracks "
        "and completeness at SNR >= 5 side by side",
    )
    real.add_argument(
        "--smallsat",
        action="store_true",
        help='small space telescope: 1078x712 px, 3"/px, 25 frames in 3 blocks, every trait on',
    )
    real.add_argument(
        "--plain",
        action="store_true",
        help="with --smallsat: the same geometry and blocks, no other trait",
    )
    p.add_argument(
        "--ideal-threshold",
        type=float,
        default=7.0,
        metavar="T",
        help="--depth: an ideal search finds an object when SNR*sqrt(frames) >= T (7)",
    )
    p.add_argument(
        "--no-gpu", action="store_true", help="no second pass with --device gpu, even with a GPU"
    )
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
    if (outdir / "template").exists():
        shutil.rmtree(outdir / "template")
    for name, data, header in field.template:
        write_fits(outdir / "template" / name, data, header)
    return frames_dir, write_json(outdir / "truth.json", field.truth)


def _chosen_traits(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(name for name in TRAITS if getattr(args, name))


def _real_traits(names: tuple[str, ...], scale_arcsec: float) -> RealTraits | None:
    """`RealTraits` with the named switches on (jumps converted from arcsec to pixels)."""
    if not names:
        return None
    values: dict[str, Any] = {}
    for name in names:
        values.update(TRAITS[name])
    if "jump_arcsec" in values:
        values["jump_px"] = values.pop("jump_arcsec") / scale_arcsec
    return RealTraits(**values)


def _field_settings(args: argparse.Namespace, traits: tuple[str, ...]) -> dict[str, Any]:
    """`simulate_field` keywords for one field of this run (bar the seed)."""
    if args.smallsat:
        values = {k: v for k, v in SMALLSAT.items() if k != "traits"}
        extra = dict(SMALLSAT["traits"])
        extra["jump_px"] = extra.pop("jump_arcsec") / SMALLSAT["pixel_scale_arcsec"]
        timing = {k: extra[k] for k in ("blocks", "block_gap_min")}  # the same night
        values["traits"] = RealTraits(**(timing if args.plain else extra))
    else:
        values = {
            "shape": (args.size, args.size),
            "n_frames": args.frames,
            "traits": _real_traits(traits, 1.2),  # simulate_field's default scale
        }
        if {"drift", "jumps"} & set(traits):
            values["dither_px"] = SMOOTH_DITHER_PX
    return {
        **values,
        "n_objects": args.objects,
        "snr_range": tuple(args.snr_range),
        "rate_range": tuple(args.rate_range),
    }


def _run_field(
    seed: int,
    *,
    args: argparse.Namespace,
    command: list[str],
    tail: list[str],
    workdir: Path,
    traits: tuple[str, ...] | None = None,
) -> tuple[dict[str, Any], FieldScore | None]:
    """Simulate, write, detect (timed) and score one field (``traits``: those switched on)."""
    traits = _chosen_traits(args) if traits is None else traits
    tag = (
        f"_smallsat{'_plain' if args.plain else ''}"
        if args.smallsat
        else "".join(f"_{t}" for t in traits)
    )
    tag += f"_tpl{args.template}" if args.template else ""
    outdir = workdir / f"s{seed}_{args.size}px_{args.frames}f{'_depth' if args.depth else ''}{tag}"
    night = TemplateNight(frames=args.template, **TEMPLATE_NIGHT) if args.template else None
    field = simulate_field(seed=seed, **_field_settings(args, traits), template=night)
    frames_dir, _ = _write_field(field, outdir)
    if field.template:
        tail = [*tail, "--template", str(outdir / "template")]
    return _detect_field(
        seed, field.truth, frames_dir, outdir, args=args, command=command, tail=tail
    )


def _traits_comparison(
    args: argparse.Namespace, *, command: list[str], tail: list[str], workdir: Path
) -> int:
    """The same seeds without traits, with each alone and with all: false tracks, completeness."""
    configs: list[tuple[str, tuple[str, ...]]] = [("none", ())]
    configs += [(name, (name,)) for name in TRAITS]
    configs.append(("all", tuple(TRAITS)))
    rows, ok = [], True
    for label, traits in configs:
        scores = []
        for seed in args.seeds:
            run, score = _run_field(
                seed, args=args, command=command, tail=tail, workdir=workdir, traits=traits
            )
            ok &= run["ok"]
            _print_run_line(f"{label} seed {seed}", run)
            if score is not None:
                scores.append(score)
                per_field = ", ".join(
                    f"{s['label']}:{s['recovered']}/{s['present']}"
                    for s in run["summary"]["snr_bins"]
                )
                console.print(f"    false {score.false_tracks}, by SNR {per_field}")
        summary = summarize(scores) if scores else None
        rows.append((label, len(scores), summary))
    table = Table(title="Real-sequence traits: the same seeds with each trait on")
    for col in ("traits", "fields", "false/field", "dup/field", "compl. SNR>=5", "SNR@50%", 'RMS"'):
        table.add_column(col, justify="right")
    for label, n, summary in rows:
        if summary is None:
            table.add_row(label, str(n), *["-"] * 5)
            continue
        table.add_row(
            label,
            str(n),
            _fmt(summary["false_tracks_per_field"]),
            _fmt(summary["duplicates_per_field"]),
            _fmt(_pct(summary["completeness_snr_ge_5"]), ".1f"),
            _fmt(summary["snr_at_50pct"]),
            _fmt(summary["astrometric_rms_arcsec"], ".3f"),
        )
    console.print(table)
    base, every = rows[0][2], rows[-1][2]
    if base and every:
        loss = 100.0 * (base["completeness_snr_ge_5"] - every["completeness_snr_ge_5"])
        false = every["false_tracks_per_field"]
        console.print(
            f"bars (all traits on): false tracks/field {false:.2f} <= "
            f"{TRAITS_BARS['false_tracks_per_field']:g}: "
            f"{_verdict(false <= TRAITS_BARS['false_tracks_per_field'])}; completeness at "
            f"SNR >= 5 {loss:+.1f} points below no traits (bar <= "
            f"{TRAITS_BARS['completeness_snr_ge_5_loss_points']:g}): "
            f"{_verdict(loss <= TRAITS_BARS['completeness_snr_ge_5_loss_points'])}"
        )
    if args.json:
        write_json(
            args.json,
            {
                "machine": _machine(),
                "mode": "traits",
                "settings": {
                    "seeds": args.seeds,
                    "size": args.size,
                    "frames": args.frames,
                    "objects": args.objects,
                    "faint": args.faint,
                    "traits": TRAITS,
                },
                "configs": [
                    {"traits": label, "fields": n, "summary": summary} for label, n, summary in rows
                ],
            },
        )
    return 0 if ok else 1


def _rerun_field(
    run: dict[str, Any], *, args: argparse.Namespace, command: list[str], tail: list[str], tag: str
) -> tuple[dict[str, Any], FieldScore | None]:
    """Detect (timed) and score a field `_run_field` wrote, again, with other arguments."""
    outdir = Path(run["workdir"])
    truth = json.loads((outdir / "truth.json").read_text())
    if (outdir / "template").is_dir():
        tail = [*tail, "--template", str(outdir / "template")]
    return _detect_field(
        run["seed"],
        truth,
        outdir / "frames",
        outdir,
        args=args,
        command=command,
        tail=tail,
        tag=tag,
    )


def _detect_field(
    seed: int,
    truth: dict[str, Any],
    frames_dir: Path,
    outdir: Path,
    *,
    args: argparse.Namespace,
    command: list[str],
    tail: list[str],
    tag: str = "",
) -> tuple[dict[str, Any], FieldScore | None]:
    """Detect (timed) and score one written field; ``tag`` names a second pass's files."""
    suffix = f"_{tag}" if tag else ""
    tracks_path = outdir / f"tracks{suffix}.json"
    log = outdir / f"detect{suffix}.log"
    tracks_path.unlink(missing_ok=True)
    cmd = [*command, "detect", str(frames_dir), "--out", str(tracks_path), *tail]
    wall, rss_mb, rc = _timed_run(cmd, log=log, timeout=args.timeout)
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
    if tag:
        run["pass"] = tag
    if not run["ok"]:
        run["log_tail"] = "\n".join(log.read_text().splitlines()[-15:])
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
        faint_threshold=block.get("faint_threshold"),
    )
    run["stages_s"] = {
        stage: sum(run["timings_s"][k] for k in keys if k in run["timings_s"])
        for stage, keys in STAGES.items()
        if any(k in run["timings_s"] for k in keys)
    }
    faint_s = run["timings_s"].get("faint_search")
    if run["trajectories_tested"] and faint_s:
        run["trajectories_per_s"] = run["trajectories_tested"] / faint_s
    score = score_field(tracks, truth)
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
    validator = jsonschema.Draft202012Validator(load_schema())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(tracks)][
        :10
    ]


def _bars(
    summary: dict[str, Any] | None,
    runs: list[dict[str, Any]],
    *,
    speed: bool,
    limits: dict[str, float] = BARS,
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
        # the per-frame search's wall time; the faint search has its own bar below
        "speed_2048x10_s": max(
            (r["wall_s"] - r["timings_s"].get("faint_search", 0.0) for r in ok_runs),
            default=None,
        )
        if speed
        else None,
        "peak_memory_mb": max((r["peak_rss_mb"] for r in ok_runs), default=None),
        # the faint search's: slowest field's throughput, slowest field's seconds
        "trajectories_per_s": min(
            (r["trajectories_per_s"] for r in ok_runs if r.get("trajectories_per_s")),
            default=None,
        ),
        "faint_search_2048x10_s": max(
            (r["timings_s"]["faint_search"] for r in ok_runs if "faint_search" in r["timings_s"]),
            default=None,
        )
        if speed
        else None,
    }
    out = []
    for name, limit in limits.items():
        value = values[name]
        passed = None if value is None else (value >= limit if name in AT_LEAST else value <= limit)
        out.append({"bar": name, "limit": limit, "value": value, "pass": passed})
    return out


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _print_report(
    runs: list[dict[str, Any]],
    scores: list[FieldScore],
    summary: dict[str, Any] | None,
    bars: list[dict[str, Any]],
    *,
    depth: dict[str, Any] | None = None,
    gpu_bars: list[dict[str, Any]] | None = None,
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
    if depth is not None:
        _print_depth(depth)
        _print_rate_classes(depth, depth["template"])
    verdict = Table(title="Bars" if gpu_bars is None else "Bars (CPU | GPU)")
    for col in ("bar", "limit", "value", "result"):
        verdict.add_column(col, justify="right")
    if gpu_bars is not None:
        verdict.add_column("GPU value", justify="right")
        verdict.add_column("GPU result", justify="right")
    for i, bar in enumerate(bars):
        row = [bar["bar"], f"{bar['limit']:g}", _fmt(bar["value"], ".3g"), _verdict(bar["pass"])]
        if gpu_bars is not None:
            row += [_fmt(gpu_bars[i]["value"], ".3g"), _verdict(gpu_bars[i]["pass"])]
        verdict.add_row(*row)
    console.print(verdict)


def _verdict(passed: bool | None) -> str:
    return {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "n/a"}[passed]


def _depth_figures(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    scores: list[FieldScore],
    gpu: tuple[list[dict[str, Any]], list[FieldScore]] | None,
) -> dict[str, Any]:
    """The depth run's figures, per device: fine SNR bins with the ideal, rates, faint search."""
    n, threshold = args.frames, args.ideal_threshold
    lo, hi = args.rate_range
    edges = [lo, *(e for e in DEPTH_RATE_EDGES if lo < e < hi), hi]
    rate_bins = [
        (0.0 if i == 0 else a, math.inf if b == hi else b)
        for i, (a, b) in enumerate(itertools.pairwise(edges))
    ]
    rate_labels = [f"{a:g}-{b:g}" for a, b in itertools.pairwise(edges)]
    devices: dict[str, tuple[list[dict[str, Any]], list[FieldScore]]] = {"cpu": (runs, scores)}
    if gpu is not None:
        devices["gpu"] = gpu
    out: dict[str, Any] = {
        "frames": n,
        "ideal_threshold": threshold,
        "ideal_snr_limit": threshold / math.sqrt(n),
        "snr_range": list(args.snr_range),
        "rate_range": list(args.rate_range),
        "template": args.template,
        "devices": {},
    }
    for device, (dev_runs, dev_scores) in devices.items():
        good = [r for r in dev_runs if r["ok"]]
        fine = completeness_by(dev_scores, DEPTH_SNR_BINS, n_frames=n, ideal_threshold=threshold)
        by_rate = completeness_by(
            dev_scores,
            rate_bins,
            by="rate",
            labels=rate_labels,
            n_frames=n,
            ideal_threshold=threshold,
        )
        ours, ours_bound = snr_at_50pct(fine)
        ideal, ideal_bound = snr_at_50pct(fine, key="ideal_completeness")
        night, night_bound = snr_at_50pct(fine, key="same_night_completeness")
        tested = [r.get("trajectories_tested") or 0 for r in good]
        faint_s = [r["timings_s"].get("faint_search") for r in good]
        known = [t for t in faint_s if t]
        n_fields = len(dev_scores)
        out["devices"][device] = {
            "fields": n_fields,
            "rate_classes": _rate_classes(dev_runs, dev_scores, rate_bins, rate_labels, args),
            "snr_bins": fine,
            "rate_bins": by_rate,
            "snr_at_50pct": ours,
            "snr_at_50pct_bound": ours_bound,
            "ideal_snr_at_50pct": ideal,
            "ideal_snr_at_50pct_bound": ideal_bound,
            "same_night_snr_at_50pct": night,
            "same_night_snr_at_50pct_bound": night_bound,
            "false_tracks_per_field": sum(s.false_tracks for s in dev_scores) / n_fields
            if n_fields
            else None,
            "duplicates_per_field": sum(s.duplicates for s in dev_scores) / n_fields
            if n_fields
            else None,
            "faint_search": [
                {
                    "seed": r["seed"],
                    "trajectories_tested": r.get("trajectories_tested"),
                    "threshold": r.get("faint_threshold"),
                    "faint_search_s": r["timings_s"].get("faint_search"),
                    "trajectories_per_s": r.get("trajectories_per_s"),
                    "wall_s": r["wall_s"],
                    "peak_rss_mb": r["peak_rss_mb"],
                    "run_peak_memory_mb": r.get("run_peak_memory_mb"),
                }
                for r in good
            ],
            "trajectories_tested": sum(tested),
            "faint_search_s": sum(known) if known else None,
            "trajectories_per_s": sum(tested) / sum(known) if known and sum(tested) else None,
            "peak_rss_mb": max((r["peak_rss_mb"] for r in good), default=None),
        }
    return out


def template_efficiency(rate_px_per_day: float, mjd: Any, sigma_px: Any, k: int) -> float:
    """Fraction of ``SNR * sqrt(N)`` an ideal stack keeps against a K-frame template.

    The template (mean of K frames as deep as one of the N) is the same
    image under every frame: where the object's positions overlap, its
    noise adds coherently. Stacked SNR is ``SNR * N / sqrt(N + sum_jk rho_jk
    / K)`` with ``rho_jk`` the PSF overlap at the object's separation (as in
    `detectors.score.same_night_efficiency`): ``1 / sqrt(1 + N / K)`` for an
    object that stays put, ``1 / sqrt(1 + 1 / K)`` for a fast one.
    """
    mjd, sigma_px = np.asarray(mjd, dtype=float), np.asarray(sigma_px, dtype=float)
    n = len(mjd)
    d2 = (rate_px_per_day * (mjd[:, None] - mjd[None, :])) ** 2
    rho = np.exp(-d2 / (2 * (sigma_px[:, None] ** 2 + sigma_px[None, :] ** 2)))
    return math.sqrt(n / (n + rho.sum() / k))


def _with_template_efficiency(score: FieldScore, truth: dict[str, Any], k: int) -> FieldScore:
    """The score with each object's ideal efficiency against a K-frame template.

    Stored in ``same_night_efficiency``, so `completeness_by` counts the
    objects an ideal stack with that template finds as ``same_night``.
    """
    mjd = [f["mjd_mid"] for f in truth["frames"]]
    sigma = [f["fwhm_px"] / 2.3548 for f in truth["frames"]]
    scale = truth["field"]["pixel_scale_arcsec"]
    return replace(
        score,
        objects=[
            replace(
                o,
                same_night_efficiency=template_efficiency(
                    o.rate_arcsec_per_hour / scale * 24.0, mjd, sigma, k
                ),
            )
            for o in score.objects
        ],
    )


def _rate_classes(
    runs: list[dict[str, Any]],
    scores: list[FieldScore],
    rate_bins: list[tuple[float, float]],
    labels: list[str],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Per rate class: SNR at 50 % completeness, ours, the ideal's, and with a template."""
    n, threshold = args.frames, args.ideal_threshold
    with_template = None
    if args.template:
        truths = [
            json.loads((Path(r["workdir"]) / "truth.json").read_text()) for r in runs if r["ok"]
        ]
        with_template = [
            _with_template_efficiency(s, t, args.template)
            for s, t in zip(scores, truths, strict=True)
        ]
    out = []
    for label, (lo, hi) in zip(labels, rate_bins, strict=True):

        def only(group: list[FieldScore], lo: float = lo, hi: float = hi) -> list[FieldScore]:
            return [
                replace(s, objects=[o for o in s.objects if lo <= o.rate_arcsec_per_hour < hi])
                for s in group
            ]

        fine = completeness_by(only(scores), DEPTH_SNR_BINS, n_frames=n, ideal_threshold=threshold)
        ours, bound = snr_at_50pct(fine)
        ideal, _ = snr_at_50pct(fine, key="ideal_completeness")
        night, night_bound = snr_at_50pct(fine, key="same_night_completeness")
        template_ideal = None
        if with_template is not None:
            curve = completeness_by(
                only(with_template), DEPTH_SNR_BINS, n_frames=n, ideal_threshold=threshold
            )
            template_ideal, _ = snr_at_50pct(curve, key="same_night_completeness")
        out.append(
            {
                "label": label,
                "present": sum(b["present"] for b in fine),
                "recovered": sum(b["recovered"] for b in fine),
                "snr_at_50pct": ours,
                "snr_at_50pct_bound": bound,
                "ideal_snr_at_50pct": ideal,
                "ideal_with_template_snr_at_50pct": template_ideal,
                "same_night_snr_at_50pct": night,
                "same_night_snr_at_50pct_bound": night_bound,
            }
        )
    return out


def _print_rate_classes(depth: dict[str, Any], template: int) -> None:
    """SNR at 50 % per rate class, beside the ideal stack's with and without a template."""
    cpu = depth["devices"]["cpu"]
    bound = {"below": "<=", "above": ">"}
    title = (
        f"Depth: per-frame SNR at 50% by rate class, {template}-frame template from another night"
        if template
        else "Depth: per-frame SNR at 50% by rate class, same-night template"
    )
    table = Table(title=title)
    for col in ('rate "/h', "rec/present", "ours", "ideal", "ideal+template", "same night"):
        table.add_column(col, justify="right")
    for c in cpu["rate_classes"]:
        table.add_row(
            c["label"],
            f"{c['recovered']}/{c['present']}",
            bound.get(c["snr_at_50pct_bound"], "") + _fmt(c["snr_at_50pct"]),
            _fmt(c["ideal_snr_at_50pct"]),
            _fmt(c["ideal_with_template_snr_at_50pct"]),
            bound.get(c["same_night_snr_at_50pct_bound"], "") + _fmt(c["same_night_snr_at_50pct"]),
        )
    console.print(table)
    if template:
        limit = TEMPLATE_BARS["snr_at_50pct_per_rate_class"]
        passed = all(
            c["snr_at_50pct_bound"] == "below"  # above 50 % even in the lowest bin
            or (c["snr_at_50pct"] is not None and c["snr_at_50pct"] <= limit)
            for c in cpu["rate_classes"]
        )
        console.print(
            f"Depth with template: SNR at 50% <= {limit:g} in every rate class: {_verdict(passed)}; "
            f"false tracks/field {_fmt(cpu['false_tracks_per_field'])} "
            f"(bar <= {TEMPLATE_BARS['false_tracks_per_field']:g})"
        )


def _print_depth(depth: dict[str, Any]) -> None:
    """The depth figures, GPU columns beside the CPU ones when there was a GPU pass."""
    devs = depth["devices"]
    names = list(devs)
    cpu = devs["cpu"]
    n, threshold = depth["frames"], depth["ideal_threshold"]

    fine = Table(
        title=f"Depth: completeness by per-frame SNR, ideal = SNR*sqrt({n}) >= {threshold:g}; "
        "same night = ideal with a template made of the same frames"
    )
    fine.add_column("SNR", justify="right")
    fine.add_column("present", justify="right")
    for dev in names:
        fine.add_column(f"{dev} rec", justify="right")
        fine.add_column(f"{dev} %", justify="right")
    fine.add_column("ideal", justify="right")
    fine.add_column("ideal %", justify="right")
    fine.add_column("same night %", justify="right")
    for i, b in enumerate(cpu["snr_bins"]):
        if not b["present"] and (b["low"] == 0.0 or b["high"] is None):
            continue  # empty open-ended edge bin
        row = [b["label"], str(b["present"])]
        for dev in names:
            d = devs[dev]["snr_bins"][i]
            row += [f"{d['recovered']}/{d['present']}", _fmt(_pct(d["completeness"]), ".0f")]
        row += [
            f"{b['ideal']}/{b['present']}",
            _fmt(_pct(b["ideal_completeness"]), ".0f"),
            _fmt(_pct(b["same_night_completeness"]), ".0f"),
        ]
        fine.add_row(*row)
    console.print(fine)

    bound = {"below": " (<= lowest bin)", "above": " (never reached)"}
    parts = [
        f"{dev} {_fmt(devs[dev]['snr_at_50pct'])}{bound.get(devs[dev]['snr_at_50pct_bound'], '')}"
        for dev in names
    ]
    ideal = cpu["ideal_snr_at_50pct"]
    console.print(
        "Depth: per-frame SNR at 50% completeness (fine bins): "
        + ", ".join(parts)
        + f"; ideal {_fmt(ideal)}{bound.get(cpu['ideal_snr_at_50pct_bound'], '')} "
        f"(limit {threshold:g}/sqrt({n}) = {depth['ideal_snr_limit']:.2f}); same night "
        f"{_fmt(cpu['same_night_snr_at_50pct'])}"
        f"{bound.get(cpu['same_night_snr_at_50pct_bound'], '')}"
    )
    console.print(
        "Depth: false tracks/field "
        + ", ".join(f"{dev} {_fmt(devs[dev]['false_tracks_per_field'])}" for dev in names)
        + f" (bar <= {DEPTH_BARS['false_tracks_per_field']:g}); duplicates/field "
        + ", ".join(f"{dev} {_fmt(devs[dev]['duplicates_per_field'])}" for dev in names)
    )

    rates = Table(title="Depth: completeness by rate (arcsec/h); findable = ideally findable")
    rates.add_column('rate "/h', justify="right")
    rates.add_column("present", justify="right")
    for dev in names:
        rates.add_column(f"{dev} rec", justify="right")
        rates.add_column(f"{dev} %", justify="right")
        rates.add_column(f"{dev} findable rec", justify="right")
        rates.add_column(f"{dev} findable %", justify="right")
    for i, b in enumerate(cpu["rate_bins"]):
        row = [b["label"], str(b["present"])]
        for dev in names:
            d = devs[dev]["rate_bins"][i]
            row += [
                f"{d['recovered']}/{d['present']}",
                _fmt(_pct(d["completeness"]), ".0f"),
                f"{d['findable_recovered']}/{d['findable_present']}",
                _fmt(_pct(d["findable_completeness"]), ".0f"),
            ]
        rates.add_row(*row)
    console.print(rates)

    faint = Table(title="Depth: faint search")
    for col in (
        "seed",
        "device",
        "trajectories",
        "threshold",
        "faint s",
        "traj/s",
        "wall s",
        "peak RSS MB",
        "run peak MB",
    ):
        faint.add_column(col, justify="right")
    for dev in names:
        d = devs[dev]
        for f in d["faint_search"]:
            faint.add_row(
                str(f["seed"]),
                dev,
                _fmt(f["trajectories_tested"], ".4g"),
                _fmt(f["threshold"]),
                _fmt(f["faint_search_s"]),
                _fmt(f["trajectories_per_s"], ".3g"),
                _fmt(f["wall_s"]),
                _fmt(f["peak_rss_mb"], ".0f"),
                _fmt(f["run_peak_memory_mb"], ".0f"),
            )
        faint.add_row(
            "all",
            dev,
            _fmt(d["trajectories_tested"] or None, ".4g"),
            "",
            _fmt(d["faint_search_s"]),
            _fmt(d["trajectories_per_s"], ".3g"),
            "",
            _fmt(d["peak_rss_mb"], ".0f"),
            "",
        )
    console.print(faint)
    console.print(
        f"Depth: trajectories/s bar >= {DEPTH_BARS['trajectories_per_s']:.3g} (slowest field), "
        f"peak memory bar <= {DEPTH_BARS['peak_memory_mb'] / 1024:g} GB"
    )


def _print_speed_faint(runs: list[dict[str, Any]], gpu_runs: list[dict[str, Any]] | None) -> None:
    """--speed --faint: the faint search's seconds against its bar, per device."""
    limit = SPEED_FAINT_BARS["faint_search_2048x10_s"]
    for dev, dev_runs in (("cpu", runs), ("gpu", gpu_runs or [])):
        for run in dev_runs:
            if not run["ok"]:
                continue
            secs = run["timings_s"].get("faint_search")
            verdict = "n/a" if secs is None else _verdict(secs <= limit)
            console.print(
                f"faint search, {run['size']}^2 x {run['frames']} ({dev}, seed {run['seed']}): "
                f"{_fmt(secs)} s (bar <= {limit:g} s: {verdict}), "
                f"{_fmt(run.get('trajectories_tested'), '.4g')} trajectories, "
                f"{_fmt(run.get('trajectories_per_s'), '.3g')}/s"
            )


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction


if __name__ == "__main__":
    sys.exit(main())
