"""``astrohunter``: the command line.

``detect`` searches FITS frames for moving objects; ``simulate`` writes a
realistic synthetic field with its truth. Errors in the input print one
line naming the file and the problem, and exit non-zero without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from astropy.utils.exceptions import AstropyWarning
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detectors import __version__
from detectors.errors import InputError

__all__ = ["main"]

STAGE_LABELS = {
    "load": "Loading frames",
    "align": "Aligning",
    "difference": "Differencing",
    "detect": "Detecting",
    "link": "Linking",
    "fit": "Fitting tracks",
    "slow": "Slow movers",
}

err_console = Console(stderr=True)


@contextmanager
def _progress_bars(enabled: bool) -> Iterator:
    """A rich progress bar per stage; ``callback(stage, done, total)``."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    bars = Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, int] = {}
    with bars:

        def callback(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(STAGE_LABELS.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield callback


def _summary(tracks: list, console: Console) -> None:
    table = Table(title=f"{len(tracks)} moving object(s) found")
    for col in ("id", "obs", 'rate "/h', "PA deg", "mag", "stacked SNR", "RA", "Dec"):
        table.add_column(col, justify="right")
    for t in tracks:
        mag = f"{float(t.mag[0]):.2f}" if t.mag.size and t.mag[0] == t.mag[0] else "-"
        table.add_row(
            t.id,
            str(t.frames.size),
            f"{t.rate_arcsec_per_hour:.2f}",
            f"{t.position_angle_deg:.1f}",
            mag,
            f"{t.stacked_snr:.1f}",
            f"{float(t.ra[0]):.5f}",
            f"{float(t.dec[0]):+.5f}",
        )
    console.print(table)


def cmd_detect(args: argparse.Namespace) -> int:
    from detectors import io, report
    from detectors.config import SearchConfig
    from detectors.search import find_moving_objects

    config = SearchConfig(
        rate_min=args.rate_min,
        rate_max=args.rate_max,
        threshold=args.threshold,
        device=args.device,
        faint=not args.no_faint,
    )
    show = not args.quiet
    with _progress_bars(show) as progress:
        t0 = time.perf_counter()
        paths = io.expand_paths(args.paths)
        loaded = io.load_frames(
            paths,
            bias=args.bias,
            flat=args.flat,
            on_error="skip" if args.skip_bad else "raise",
            progress=lambda done, total: progress("load", done, total),
        )
        for name, reason in loaded.skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        io.check_frames(loaded.frames, skipped=loaded.skipped)
        result = find_moving_objects(
            loaded.frames,
            config=config,
            progress=progress,
            timings={"load": time.perf_counter() - t0},
            keep_differences=args.cutouts is not None,
        )
    contract = report.tracks_to_contract(result.tracks, frames=result.frames, run=result.run)
    io.write_json(args.out, contract)
    if args.mpc:
        mpc = report.mpc_report(
            result.tracks, frames=result.frames, observatory_code=args.observatory
        )
        io.write_text(args.mpc, mpc)
    if args.cutouts is not None:
        _write_cutouts(result, args.cutouts)
    if show:
        console = Console(stderr=True)
        _summary(result.tracks, console)
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.run["timings_s"].items())
        console.print(f"[dim]{result.run['device']}: {timings}[/]")
        console.print(
            f"tracks written to {args.out}" + (f", MPC report to {args.mpc}" if args.mpc else "")
        )
    return 0


def _write_cutouts(result, folder: Path) -> None:
    """A blink strip per track and an overview of the field, as PNG."""
    import numpy as np

    from detectors import io
    from detectors.cutouts import field_overlay, track_strip

    mjd = np.array([f.mjd for f in result.frames])
    for track in result.tracks:
        io.write_png(folder / f"{track.id}.png", track_strip(track, result.differences, mjd))
    io.write_png(folder / "overview.png", field_overlay(result.differences.template, result.tracks))


def _simulate_with_orbits(args: argparse.Namespace) -> int:
    """``simulate --real-orbits``: movers on orbits, and MPCORB.DAT holding some of them."""
    from detectors import io
    from detectors.simulate_orbits import simulate_orbit_field

    made = simulate_orbit_field(
        seed=args.seed,
        shape=(args.size, args.size),
        n_frames=args.frames,
        n_objects=args.objects,
        snr_range=(args.snr_min, args.snr_max),
        catalogued_fraction=args.catalogued,
    )
    frames_dir, truth = io.write_simulated_field(made.field, args.outdir)
    orbits = io.write_text(args.outdir / "MPCORB.DAT", made.mpcorb)
    Console(stderr=True).print(
        f"{len(made.field.frames)} frames in {frames_dir}, truth ({len(made.catalogued)} moving "
        f"objects on orbits) in {truth}, {int(made.catalogued.sum())} of them catalogued in {orbits}"
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from detectors import io
    from detectors.simulate import simulate_field

    if args.real_orbits:
        return _simulate_with_orbits(args)

    field = simulate_field(
        seed=args.seed,
        shape=(args.size, args.size),
        n_frames=args.frames,
        n_objects=args.objects,
        snr_range=(args.snr_min, args.snr_max),
        rate_range=(args.rate_min, args.rate_max),
    )
    frames_dir, truth = io.write_simulated_field(field, args.outdir)
    Console(stderr=True).print(
        f"{len(field.frames)} frames in {frames_dir}, truth ({len(field.truth['objects'])} "
        f"moving objects) in {truth}"
    )
    return 0


def _embedded_env() -> None:
    """Select the in-process broker before any actor module is imported."""
    os.environ["ASTROHUNTER_BROKER"] = "memory"


def cmd_search(args: argparse.Namespace) -> int:
    from .client import print_tracks, run_embedded, run_remote

    body = {
        "ra": args.ra,
        "dec": args.dec,
        "radius_arcmin": args.radius,
        "source": args.source,
        "rate_min": args.rate_min,
        "rate_max": args.rate_max,
        "faint": not args.no_faint,
        "seed": args.seed,
    }
    if args.path:
        body["path"] = args.path
    console = Console(stderr=True)
    try:
        if args.server:
            status, contract = run_remote(args.server, body, console)
        else:
            _embedded_env()
            status, contract = run_embedded(body, console)
    except ValueError as exc:  # the API refused the request (422)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        from detectors import io

        io.write_json(args.out, contract)
    if status["state"] != "done":
        print(
            f"error: job {status['job_id']} {status['state']}: {status.get('error')}",
            file=sys.stderr,
        )
        return 1
    print_tracks(contract, status, Console())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    _embedded_env()
    import uvicorn
    from dramatiq import Worker

    from .api.main import create_app
    from .broker import broker

    worker = Worker(broker, worker_threads=args.threads)
    worker.start()
    try:
        uvicorn.run(create_app(), host=args.host, port=args.port)
    finally:
        worker.stop()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from .api.main import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port)
    return 0


#: ``astrohunter worker STAGE``: the actor module and queue of each service.
WORKER_STAGES = {
    "download": ("app.actors.download", "download"),
    "data": ("app.actors.data", "data"),
    "fast_detect": ("app.actors.fast_detect", "fast_detect"),
    "detailed_detect": ("app.actors.detailed_detect", "detailed_detect"),
}


def worker_command(stage: str, *, processes: int, threads: int) -> list[str]:
    """The ``dramatiq`` command line that serves one stage's queue (or all)."""
    if stage == "all":
        modules, queues = ["app.actors.all"], list(WORKER_STAGES)
    else:
        module, queue = WORKER_STAGES[stage]
        modules, queues = [module], [queue]
    return [
        sys.executable, "-m", "dramatiq", *modules,
        "--processes", str(processes), "--threads", str(threads), "--queues", *queues,
    ]  # fmt: skip


def cmd_worker(args: argparse.Namespace) -> int:
    command = worker_command(args.stage, processes=args.processes, threads=args.threads)
    os.execv(command[0], command)
    return 0  # not reached: exec replaces this process


def cmd_cleanup(args: argparse.Namespace) -> int:
    import logging

    from .config import get_settings
    from .scheduler import cleanup_once, run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    if not (args.once or args.dry_run):
        run_scheduler(settings)
        return 0
    removals = cleanup_once(settings, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for r in removals:
        print(f"{verb} job {r.job_id}: {r.bytes / 1e6:.1f} MB ({r.reason})")
        for path in r.paths:
            print(f"  {path}")
    print(f"{len(removals)} job(s), {sum(r.bytes for r in removals) / 1e6:.1f} MB {verb}")
    return 0


def cmd_orbits(args: argparse.Namespace) -> int:
    """``astrohunter orbits update``: MPCORB and the observatory codes into DATA_DIR/catalog."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from .catalog import update_catalog
    from .config import get_settings
    from .sources.http import SourceUnavailable

    settings = get_settings()
    bars = Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=args.quiet,
    )
    tasks: dict[str, int] = {}

    def progress(name: str, done: int, total: int | None) -> None:
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=total)
        bars.update(tasks[name], completed=done, total=total)

    try:
        with bars:
            files = update_catalog(
                settings,
                mpcorb_url=args.mpcorb_url,
                obscodes_url=args.obscodes_url,
                progress=progress,
                report=lambda message: err_console.print(f"[yellow]{message}[/]"),
            )
    except SourceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{files.orbits} orbits ({files.skipped_lines} malformed lines skipped) in {files.mpcorb}, "
        f"{files.codes} observatory codes in {files.obscodes}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astrohunter",
        description="Find asteroids (moving objects) in sequences of FITS images.",
    )
    parser.add_argument("--version", action="version", version=f"astrohunter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("detect", help="search FITS frames of one field for moving objects")
    d.add_argument(
        "paths", nargs="+", help="FITS files, folders, or glob patterns (3 frames or more)"
    )
    d.add_argument("--out", required=True, type=Path, help="tracks JSON (the tracks contract)")
    d.add_argument("--mpc", type=Path, help="also write an MPC 1992 80-column report here")
    d.add_argument(
        "--observatory",
        default="500",
        help="MPC observatory code for the report when the headers give none (500)",
    )
    d.add_argument("--rate-min", type=float, default=1.0, help="slowest motion, arcsec/h (1)")
    d.add_argument("--rate-max", type=float, default=150.0, help="fastest motion, arcsec/h (150)")
    d.add_argument("--threshold", type=float, default=3.5, help="per-frame detection SNR (3.5)")
    d.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    d.add_argument("--no-faint", action="store_true", help="skip the faint shift-and-stack search")
    d.add_argument("--bias", type=Path, help="master bias FITS to subtract")
    d.add_argument("--flat", type=Path, help="master flat FITS to divide by")
    d.add_argument(
        "--cutouts", type=Path, help="write a PNG blink strip per track and an overview here"
    )
    d.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable frames instead of stopping"
    )
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    d.set_defaults(func=cmd_detect)

    s = sub.add_parser("simulate", help="write a realistic simulated field and its truth")
    s.add_argument("outdir", type=Path)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--size", type=int, default=1024, help="frame width and height, pixels")
    s.add_argument("--frames", type=int, default=10)
    s.add_argument("--objects", type=int, default=20, help="moving objects to inject")
    s.add_argument("--snr-min", type=float, default=3.0, help="per-frame SNR range of the movers")
    s.add_argument("--snr-max", type=float, default=15.0)
    s.add_argument("--rate-min", type=float, default=1.0, help="motion range, arcsec/h")
    s.add_argument("--rate-max", type=float, default=150.0)
    s.add_argument(
        "--real-orbits",
        action="store_true",
        help="movers on real orbits (688's sky); writes OUTDIR/MPCORB.DAT with some of them",
    )
    s.add_argument(
        "--catalogued", type=float, default=0.5, help="share of orbit movers in MPCORB.DAT (0.5)"
    )
    s.set_defaults(func=cmd_simulate)

    q = sub.add_parser("search", help="search a sky position and print its tracks")
    q.add_argument("--ra", type=float, required=True, help="right ascension, degrees")
    q.add_argument("--dec", type=float, required=True, help="declination, degrees")
    q.add_argument("--radius", type=float, default=6.0, help="field half-width, arcmin (6)")
    q.add_argument(
        "--source",
        default="auto",
        help="frame source: auto (best real survey), simulated, local, ztf, tess",
    )
    q.add_argument("--path", help="folder or glob, for --source local")
    q.add_argument("--rate-min", type=float, default=1.0)
    q.add_argument("--rate-max", type=float, default=150.0)
    q.add_argument("--no-faint", action="store_true")
    q.add_argument("--seed", type=int, default=0, help="simulated source: which realisation")
    q.add_argument("--server", help="API URL (e.g. http://localhost:8000); default: embedded")
    q.add_argument("--out", type=Path, help="also write the tracks JSON here")
    q.set_defaults(func=cmd_search)

    for name, helptext, func in (
        ("serve", "embedded: API and every worker in one process, no RabbitMQ", cmd_serve),
        ("api", "the API gateway alone (workers run separately)", cmd_api),
    ):
        a = sub.add_parser(name, help=helptext)
        a.add_argument("--host", default="127.0.0.1")
        a.add_argument("--port", type=int, default=8000)
        if name == "serve":
            a.add_argument("--threads", type=int, default=2, help="worker threads")
        a.set_defaults(func=func)

    c = sub.add_parser("cleanup", help="the cleanup service: retention and free-space cleanup")
    c.add_argument("--once", action="store_true", help="one pass now, then exit")
    c.add_argument("--dry-run", action="store_true", help="print what would go, remove nothing")
    c.set_defaults(func=cmd_cleanup)

    o = sub.add_parser("orbits", help="the known-object catalogue: download MPCORB and codes")
    o_sub = o.add_subparsers(dest="action", required=True)
    u = o_sub.add_parser("update", help="download MPCORB.DAT.gz and ObsCodes.html, then parse")
    u.add_argument("--mpcorb-url", help="override ASTROHUNTER_MPCORB_URL")
    u.add_argument("--obscodes-url", help="override ASTROHUNTER_OBSCODES_URL")
    u.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    u.set_defaults(func=cmd_orbits)

    w = sub.add_parser("worker", help="a Dramatiq worker for one stage's queue, or all")
    w.add_argument("stage", choices=[*WORKER_STAGES, "all"])
    w.add_argument("--processes", type=int, default=1)
    w.add_argument("--threads", type=int, default=1)
    w.set_defaults(func=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("ignore", category=AstropyWarning)  # header nits; real problems raise
    warnings.filterwarnings("ignore", message="skipped ")  # printed once by the command itself
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    try:
        return args.func(args)
    except (InputError, RuntimeError) as exc:  # RuntimeError: e.g. --device gpu without a GPU
        # Plain text: a file name is never read as markup, and a log gets one line per error.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
