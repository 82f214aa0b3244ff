"""``astrohunter``: the command line.

``detect`` searches FITS frames for moving objects; ``search`` searches a
sky position through the API (embedded in this process, or a running one);
``simulate`` writes a realistic synthetic field with its truth; ``serve``,
``api``, ``worker`` and ``cleanup`` run the services. Errors in the input
print one line naming the file and the problem, and exit 2 without a
traceback.

The search settings' options (``--rate-min``, ``--no-faint``, ...) are made
from the engine's settings table (`detectors.config.PARAMETERS`), with its
defaults, limits and help.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from astropy.utils.exceptions import AstropyWarning
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from detectors import __version__
from detectors.config import PARAMETERS
from detectors.errors import InputError, RegistrationError

__all__ = ["build_parser", "main", "worker_argv", "worker_command"]

STAGE_LABELS = {
    "load": "Loading frames",
    "register": "Registering",
    "align": "Aligning",
    "difference": "Differencing",
    "detect": "Detecting",
    "link": "Linking",
    "fit": "Fitting tracks",
    "slow": "Slow movers",
    "faint_search": "Faint search",
    "faint_verify": "Faint verify",
}

err_console = Console(stderr=True)


@contextmanager
def _progress_bars(enabled: bool, *, transient: bool = False) -> Iterator:
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
        transient=transient,
    )
    tasks: dict[str, TaskID] = {}
    with bars:

        def callback(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(STAGE_LABELS.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield callback


def _add_settings(parser: argparse.ArgumentParser, scope: str) -> None:
    """One option per setting of ``scope`` in the settings table (``--no-NAME`` for on/off)."""
    for p in PARAMETERS.values():
        if scope not in p.scopes:
            continue
        if p.kind is bool:
            parser.add_argument(
                "--no-" + p.name.replace("_", "-"),
                dest=p.name,
                action="store_false",
                help=f"do not {p.help}",
            )
        else:
            parser.add_argument(
                p.option,
                dest=p.name,
                type=p.kind,
                default=p.default,
                choices=p.choices,
                metavar=None if p.choices else p.name.upper(),
                help=p.describe().replace("%", "%%"),
            )


def _settings(args: argparse.Namespace, scope: str) -> dict:
    """The values of ``scope``'s settings, as given on the command line."""
    return {name: getattr(args, name) for name, p in PARAMETERS.items() if scope in p.scopes}


def _report_info(args: argparse.Namespace, frames: list, settings) -> tuple:
    """The reference frame and what the reports will name; refuses now what a report lacks."""
    from detectors.align import reference_index
    from detectors.observatories import site_from_header

    from .catalog import load_obscodes, obscodes_path
    from .known import resolve_observatory_code
    from .results import ReportError, ReportInfo

    reference = frames[reference_index(frames)]
    codes = obscodes_path(settings)
    code = resolve_observatory_code(
        given=args.observatory,
        settings=settings,
        header_code=reference.observatory_code,
        site=site_from_header(reference.header),
        codes=load_obscodes(codes) if codes else None,
    )
    info = ReportInfo.build(
        settings,
        reference,
        observatory_code=code,
        submitter=args.submitter,
        observers=args.observer,
        measurers=args.measurer,
        telescope=args.telescope,
        telescope_design=args.telescope_design,
        telescope_aperture_m=args.telescope_aperture,
        ast_cat=args.ast_cat,
    )
    for wanted, missing in (
        (args.mpc, info.missing_for_mpc()),
        (args.ades, info.missing_for_ades()),
    ):
        if wanted and missing:
            raise ReportError(f"{wanted.name}: the report needs " + "; ".join(missing))
    return reference, info


def cmd_detect(args: argparse.Namespace) -> int:
    from detectors import io, report
    from detectors.config import SearchConfig
    from detectors.search import find_moving_objects

    from .config import get_settings
    from .results import ades_text, identify, mpc_text
    from .tables import tracks_table

    settings = get_settings()
    config = SearchConfig(**_settings(args, "detect"))
    show = not args.quiet
    t0 = time.perf_counter()
    paths = io.expand_paths(args.paths)
    # The loading bar goes once done (and is not drawn into logs), so a bad
    # file leaves one line: its error.
    with _progress_bars(show and err_console.is_terminal, transient=True) as progress:
        loaded = io.load_frames(
            paths,
            bias=args.bias,
            flat=args.flat,
            on_error="skip" if args.skip_bad else "raise",
            progress=lambda done, total: progress("load", done, total),
            allow_no_wcs=True,
        )
    for name, reason in loaded.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    frames, skipped = list(loaded.frames), list(loaded.skipped)
    io.check_frames(frames, skipped=skipped)
    reference, info = _report_info(args, frames, settings)
    template = (
        io.load_template(io.expand_paths(args.template), bias=args.bias, flat=args.flat)
        if args.template
        else None
    )
    if show:
        err_console.print(f"{STAGE_LABELS['load']:<16} {len(frames)} frames")
    while True:  # --skip-bad: a frame that cannot be registered is left out, and again
        try:
            with _progress_bars(show) as progress:
                result = find_moving_objects(
                    frames,
                    config=config,
                    template=template,
                    progress=progress,
                    timings={"load": time.perf_counter() - t0},
                    keep_differences=args.cutouts is not None,
                )
            break
        except RegistrationError as err:
            if not args.skip_bad:
                raise
            print(f"skipped {err}", file=sys.stderr)
            skipped.append((err.frame, str(err).removeprefix(f"{err.frame}: ")))
            frames = [f for f in frames if f.name != err.frame]
            io.check_frames(frames, skipped=skipped)
    known = identify(
        result.tracks,
        result.frames,
        wcs=None if result.sky is None else result.sky.wcs,
        reference=reference,
        settings=settings,
        mode=args.known,
        orbits=args.orbits,
        observatory_code=info.observatory_code,
    )
    result.run["timings_s"]["identify"] = round(known.seconds, 4)
    result.run["timings_s"]["total"] = round(result.run["timings_s"]["total"] + known.seconds, 4)
    contract = report.tracks_to_contract(
        result.tracks,
        frames=result.frames,
        run={**result.run, **known.run},
        annotations=known.per_track,
        reference=[f.name for f in result.frames].index(result.run["reference_frame"]),
        centre=_field_centre(result),
    )
    io.write_json(args.out, contract)
    if result.sky is not None and result.sky.astrometry != "wcs":
        print(f"warning: sky positions: {result.sky.note}.", file=sys.stderr)
    if args.mpc:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", report.ApproximateAstrometryWarning)
            try:
                mpc = mpc_text(result.tracks, result.frames, known=known.known, info=info)
            except ValueError as err:  # no sky positions at all
                raise InputError(f"tracks written to {args.out}, but {err}") from err
        for warning in caught:
            print(f"warning: {warning.message} ({args.mpc})", file=sys.stderr)
        io.write_text(args.mpc, mpc)
    if args.ades:
        ades = ades_text(result.tracks, result.frames, known=known.known, info=info)
        io.write_text(args.ades, ades)
    if args.cutouts is not None:
        from detectors.cutouts import track_pictures

        assert result.differences is not None
        mjd = [f.mjd for f in result.frames]
        for name, rgb in track_pictures(result.tracks, result.differences, mjd).items():
            io.write_png(args.cutouts / name, rgb)
    if show:
        err_console.print(tracks_table(contract["tracks"]))
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in result.run["timings_s"].items())
        err_console.print(f"{result.run['device']}: {timings}", style="dim")
        for note in known.notes:
            err_console.print(f"note: {note}", style="yellow")
        reports = (("MPC report", args.mpc), ("ADES report", args.ades))
        err_console.print(
            f"tracks written to {args.out}"
            + "".join(f", {what} to {path}" for what, path in reports if path)
        )
    return 0


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


def _field_centre(result) -> tuple[float, float] | None:
    """RA, Dec of the reference grid's centre by the search's sky solution (None without one)."""
    wcs = None if result.sky is None else result.sky.wcs
    if wcs is None:
        return None
    ref = next(f for f in result.frames if f.name == result.run["reference_frame"])
    ra, dec = wcs.pixel_to_world_values((ref.shape[1] - 1) / 2, (ref.shape[0] - 1) / 2)
    return float(ra), float(dec)


def cmd_simulate(args: argparse.Namespace) -> int:
    from detectors import io
    from detectors.simulate import TemplateNight, simulate_field

    if args.template_frames < 0:
        raise InputError(f"--template-frames: give 0 or more frames, not {args.template_frames}")
    if args.real_orbits:
        if args.template_frames:
            raise InputError("--template-frames: not available with --real-orbits")
        return _simulate_with_orbits(args)

    field = simulate_field(
        seed=args.seed,
        shape=(args.size, args.size),
        n_frames=args.frames,
        n_objects=args.objects,
        snr_range=(args.snr_min, args.snr_max),
        rate_range=(args.rate_min, args.rate_max),
        template=TemplateNight(frames=args.template_frames) if args.template_frames else None,
    )
    frames_dir, truth = io.write_simulated_field(field, args.outdir)
    err_console.print(
        f"{len(field.frames)} frames in {frames_dir}, truth ({len(field.truth['objects'])} "
        f"moving objects) in {truth}"
        + (
            f", {len(field.template)} template frames in {args.outdir / 'template'}"
            if field.template
            else ""
        )
    )
    return 0


def _utc(text: str) -> str:
    """An ISO time for ``--start``/``--end`` (checked here, sent as given)."""
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO time such as 2024-03-01T02:00: {text!r}"
        ) from None
    return text


def cmd_search(args: argparse.Namespace) -> int:
    from .client import run_search
    from .config import get_settings
    from .embedded import embedded_server

    if args.serve and args.server:
        print(
            f"error: --serve keeps the embedded server running; {args.server} already serves "
            "the review page",
            file=sys.stderr,
        )
        return 2
    body = {"ra": args.ra, "dec": args.dec, "source": args.source, **_settings(args, "request")}
    for name in ("path", "template_path", "start", "end", "observatory", "known"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.survey_reference:
        body["survey_reference"] = True
    key = get_settings().api_key
    headers = {"X-API-Key": key} if key else None
    console = Console(stderr=True)
    written = {"mpc": args.mpc, "cutouts": args.cutouts}
    try:
        if args.server:
            outcome = run_search(args.server, body, console, headers=headers, **written)
            return _searched(args, outcome, page=args.server.rstrip("/"))
        port = args.port if args.port is not None else (8000 if args.serve else 0)
        with embedded_server(threads=args.threads, port=port) as url:
            outcome = run_search(url, body, console, headers=headers, **written)
            code = _searched(args, outcome, page=url if args.serve else None)
            if args.serve and code == 0:
                _serve_until_interrupted()
            return code
    except ValueError as exc:  # the API refused the request
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _searched(args: argparse.Namespace, outcome, *, page: str | None) -> int:
    """Print what a search found, and where to review it: ``page`` is a running server."""
    from .client import print_outcome

    status = outcome.status
    if status["state"] != "done":
        print(
            f"error: job {status['job_id']} {status['state']}: {status.get('error')}",
            file=sys.stderr,
        )
        return 1
    if args.out:
        from detectors import io

        outcome.written.insert(0, io.write_json(args.out, outcome.contract))
    print_outcome(outcome, Console())
    job = status["job_id"]
    if page is None:  # the embedded server stops with this command; its data stays
        print(
            f"review the tracks in a browser: run `astrohunter serve`, then open "
            f"http://127.0.0.1:8000/jobs/{job} (or search with --serve)",
            flush=True,
        )
    else:
        stop = " (Ctrl-C stops the server)" if args.serve else ""
        print(f"review the results at {page}/jobs/{job}{stop}", flush=True)
    return 0


def _serve_until_interrupted() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def cmd_serve(args: argparse.Namespace) -> int:
    from .embedded import use_in_process_broker

    use_in_process_broker()
    import uvicorn
    from dramatiq import Worker

    from .api.main import create_app
    from .broker import broker

    worker = Worker(broker, worker_threads=args.threads)
    worker.start()
    print(f"AstroHunter: search and review at http://{args.host}:{args.port}/", flush=True)
    try:
        uvicorn.run(create_app(), host=args.host, port=args.port)
    finally:
        worker.stop()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from .api.main import create_app

    print(f"AstroHunter: search and review at http://{args.host}:{args.port}/", flush=True)
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


def worker_argv(args: argparse.Namespace) -> list[str]:
    """``worker_command`` with the defaults filled in: one process per core for ``all``."""
    cores = os.cpu_count() or 1
    processes = args.processes or (cores if args.stage == "all" else 1)
    threads = args.threads or (2 if args.stage == "all" else 1)
    return worker_command(args.stage, processes=processes, threads=threads)


def cmd_worker(args: argparse.Namespace) -> int:
    command = worker_argv(args)
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
    tasks: dict[str, TaskID] = {}

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


def _add_report_people(parser: argparse.ArgumentParser) -> None:
    """Who and what a report names (each defaults to its ASTROHUNTER_* setting)."""
    parser.add_argument("--submitter", help="ADES submitter's name (ASTROHUNTER_SUBMITTER)")
    parser.add_argument(
        "--observer", action="append", help="observer's name, repeatable (default: OBSERVER)"
    )
    parser.add_argument(
        "--measurer", action="append", help="measurer's name, repeatable (ASTROHUNTER_MEASURERS)"
    )
    parser.add_argument(
        "--telescope", help="telescope, e.g. '1.1-m f/8 reflector + CCD' (default: TELESCOP)"
    )
    parser.add_argument(
        "--telescope-design", help="ADES telescope design, e.g. Reflector, Refractor, Schmidt"
    )
    parser.add_argument("--telescope-aperture", type=float, help="telescope aperture, metres")
    parser.add_argument(
        "--ast-cat", help="astrometric catalogue's MPC code, e.g. Gaia2 (default: from REGCAT)"
    )


def _add_listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astrohunter",
        description="Find asteroids (moving objects) in sequences of FITS images.",
    )
    parser.add_argument("--version", action="version", version=f"astrohunter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser(
        "detect",
        help="search FITS frames of one field for moving objects",
        description="Search three or more FITS frames of one field (each with a celestial WCS "
        "and an observation time) for moving objects; write the tracks as JSON (the tracks "
        "contract) and, if asked, an MPC report and pictures of every track.",
    )
    d.add_argument(
        "paths", nargs="+", help="FITS files, folders, or glob patterns (3 frames or more)"
    )
    d.add_argument("--out", required=True, type=Path, help="tracks JSON (the tracks contract)")
    d.add_argument("--mpc", type=Path, help="also write an MPC 1992 80-column report here")
    d.add_argument("--ades", type=Path, help="also write an ADES PSV report here")
    d.add_argument(
        "--observatory",
        help="MPC observatory code (default: ASTROHUNTER_OBSERVATORY, the header's code, or the "
        "header's site matched to the MPC's list; reports refuse to guess)",
    )
    d.add_argument(
        "--known",
        choices=("auto", "mpcorb", "skybot", "none"),
        help="identify known objects from the orbit catalogue, SkyBoT (online), or not "
        "(default ASTROHUNTER_KNOWN, auto: the catalogue when there is one, else SkyBoT)",
    )
    d.add_argument(
        "--orbits",
        type=Path,
        help="MPCORB-format orbit catalogue (default ASTROHUNTER_ORBITS, or the one "
        "`astrohunter orbits update` downloaded)",
    )
    _add_report_people(d)
    _add_settings(d, "detect")
    d.add_argument(
        "--template",
        nargs="+",
        metavar="PATH",
        help="frames of the same field from another night, or one deep coadd (FITS with WCS; "
        "files, folders or globs): subtracted instead of the night's own median, so slow "
        "movers are not subtracted with it; raw frames of the same camera are calibrated with "
        "--bias/--flat like the sequence",
    )
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

    s = sub.add_parser(
        "simulate",
        help="write a realistic simulated field and its truth",
        description="Write a simulated image sequence (FITS frames with WCS and times, stars, "
        "noise, defects, moving objects) and its truth (truth.json) into OUTDIR.",
    )
    s.add_argument("outdir", type=Path, help="folder for frames/ and truth.json")
    s.add_argument("--seed", type=int, default=1, help="random seed (1)")
    s.add_argument("--size", type=int, default=1024, help="frame width and height, pixels (1024)")
    s.add_argument("--frames", type=int, default=10, help="frames in the sequence (10)")
    s.add_argument("--objects", type=int, default=20, help="moving objects to inject (20)")
    s.add_argument("--snr-min", type=float, default=3.0, help="lowest per-frame SNR of a mover (3)")
    s.add_argument("--snr-max", type=float, default=15.0, help="highest per-frame SNR (15)")
    s.add_argument("--rate-min", type=float, default=1.0, help="slowest mover, arcsec/h (1)")
    s.add_argument(
        "--rate-max",
        type=float,
        default=PARAMETERS["rate_max"].default,
        help="fastest mover, arcsec/h (the search's default range)",
    )
    s.add_argument(
        "--real-orbits",
        action="store_true",
        help="movers on real orbits (688's sky); writes OUTDIR/MPCORB.DAT with some of them",
    )
    s.add_argument(
        "--catalogued", type=float, default=0.5, help="share of orbit movers in MPCORB.DAT (0.5)"
    )
    s.add_argument(
        "--template-frames",
        type=int,
        default=0,
        metavar="K",
        help="also write K frames of the field from the night before, with the movers where "
        "they were then, into OUTDIR/template/ (for detect --template; 0: none)",
    )
    s.set_defaults(func=cmd_simulate)

    q = sub.add_parser(
        "search",
        help="search a sky position and print its tracks",
        description="Submit a search of a sky position, follow it, and print its tracks. "
        "Without --server the whole system runs in this process (embedded mode: no RabbitMQ, "
        "no Redis, SQLite under DATA_DIR).",
    )
    q.add_argument("--ra", type=float, required=True, help="right ascension, degrees (ICRS)")
    q.add_argument("--dec", type=float, required=True, help="declination, degrees (ICRS)")
    q.add_argument(
        "--source",
        default="auto",
        help="frame source: auto (best real survey), simulated, local, ztf, tess (auto)",
    )
    q.add_argument("--path", help="folder or glob, for --source local")
    q.add_argument(
        "--template-path",
        help="folder or glob of frames of the field from another night, for --source local",
    )
    q.add_argument(
        "--survey-reference",
        action="store_true",
        help="--source ztf: subtract ZTF's reference image instead of the night's median",
    )
    q.add_argument("--start", type=_utc, help="time window start, ISO UTC (e.g. 2024-03-01)")
    q.add_argument("--end", type=_utc, help="time window end, ISO UTC")
    q.add_argument("--observatory", help="MPC observatory code for the reports")
    q.add_argument(
        "--known",
        choices=("auto", "mpcorb", "skybot", "none"),
        help="identify known objects (default: the server's setting; simulated: none)",
    )
    _add_settings(q, "request")
    q.add_argument("--server", help="API URL (e.g. http://localhost:8000); default: embedded")
    q.add_argument("--threads", type=int, default=2, help="embedded mode: stage worker threads (2)")
    q.add_argument(
        "--serve",
        action="store_true",
        help="embedded mode: keep the server running after the search, for its review page",
    )
    q.add_argument(
        "--port",
        type=int,
        help="embedded mode: port of the server (8000 with --serve, else any free one)",
    )
    q.add_argument("--out", type=Path, help="also write the tracks JSON here")
    q.add_argument("--mpc", type=Path, help="also write the MPC report here")
    q.add_argument("--cutouts", type=Path, help="also write the track pictures (PNG) here")
    q.set_defaults(func=cmd_search)

    a = sub.add_parser(
        "serve",
        help="embedded: API and every worker in one process, no RabbitMQ",
        description="Run the API and every stage worker in this process, with the "
        "in-process broker and SQLite under DATA_DIR.",
    )
    _add_listen(a)
    a.add_argument("--threads", type=int, default=2, help="stage worker threads (2)")
    a.set_defaults(func=cmd_serve)
    a = sub.add_parser(
        "api",
        help="the API gateway alone (workers run separately)",
        description="Run the HTTP API; it hands searches to RabbitMQ (RABBITMQ_HOST).",
    )
    _add_listen(a)
    a.set_defaults(func=cmd_api)

    c = sub.add_parser(
        "cleanup",
        help="the cleanup service: retention and free-space cleanup",
        description="Remove finished jobs' frames and work files after DATA_RETENTION_DAYS or "
        "when free space is below MIN_DISK_SPACE_GB; never an active job's.",
    )
    c.add_argument("--once", action="store_true", help="one pass now, then exit")
    c.add_argument("--dry-run", action="store_true", help="print what would go, remove nothing")
    c.set_defaults(func=cmd_cleanup)

    o = sub.add_parser(
        "orbits",
        help="the known-object catalogue: download MPCORB and codes",
        description="Keep the known-object catalogue (MPCORB) and the MPC observatory codes "
        "in DATA_DIR/catalog.",
    )
    o_sub = o.add_subparsers(dest="action", required=True, help="what to do")
    u = o_sub.add_parser(
        "update",
        help="download MPCORB.DAT.gz and ObsCodes.html, then parse",
        description="Download MPCORB.DAT.gz and the observatory codes (atomic, validated, "
        "retried), then parse the catalogue once into its cache.",
    )
    u.add_argument("--mpcorb-url", help="override ASTROHUNTER_MPCORB_URL")
    u.add_argument("--obscodes-url", help="override ASTROHUNTER_OBSCODES_URL")
    u.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    u.set_defaults(func=cmd_orbits)

    w = sub.add_parser(
        "worker",
        help="a Dramatiq worker for one stage's queue, or all",
        description="Serve one stage's queue from RabbitMQ (or all four with 'all').",
    )
    w.add_argument("stage", choices=[*WORKER_STAGES, "all"], help="which queue to serve")
    w.add_argument(
        "--processes",
        type=int,
        default=0,
        help="worker processes (default: 1 per stage, the machine's cores for 'all')",
    )
    w.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads per process (default: 1 per stage, 2 for 'all')",
    )
    w.set_defaults(func=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("ignore", category=AstropyWarning)  # header nits; real problems raise
    warnings.filterwarnings("ignore", message="skipped ")  # printed once by the command itself
    try:
        return args.func(args)
    except (InputError, RuntimeError) as exc:  # RuntimeError: e.g. --device gpu without a GPU
        # Plain text, one line: a file name is never read as markup, and a log
        # gets one line per error.
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
