"""The search as four stages, each a plain function of a job id.

``download`` -> ``ingest`` -> ``fast`` -> ``detailed``. The Dramatiq actors
(one per service) and the embedded mode call exactly these functions. Each
stage reads what the previous one left in the database and the job's data
folder, writes its own output the same way, and can be run twice without
harm: files are registered by name, arrays are overwritten atomically and
tracks are replaced, never appended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from detectors import io, report
from detectors.config import SearchConfig, default
from detectors.errors import InputError
from detectors.search import detailed_detect, fast_detect, run_info

from .config import Settings
from .db import crud
from .db.base import session_factory
from .db.models import ACTIVE_STATES
from .disk import check_disk
from .pictures import write_pictures
from .results import ReportError, ReportInfo, ades_text, identify, mpc_text
from .sources import FetchRequest, get_source
from .status import StatusBoard

__all__ = [
    "STAGES",
    "Cancelled",
    "Context",
    "GiveUp",
    "detailed",
    "download",
    "fail",
    "fast",
    "ingest",
]

#: Each stage's state name and the share of the job's percent it covers.
STAGES = {
    "download": ("downloading", 0.0, 10.0),
    "ingest": ("ingesting", 10.0, 15.0),
    "fast": ("fast_detect", 15.0, 90.0),
    "detailed": ("detailed_detect", 90.0, 100.0),
}
#: The engine's own stages within each service stage, with their share of its
#: time (measured on 2048^2 x 10 fields with the faint search, on the CPU: the
#: fast detector scans every pixel, the detailed one only reads near candidates).
ENGINE_STAGES = {
    "fast": {
        "register": 0.06,
        "align": 0.08,
        "difference": 0.2,
        "detect": 0.01,
        "link": 0.01,
        "slow": 0.05,
        "faint_search": 0.59,
    },
    "detailed": {"fit": 0.4, "faint_verify": 0.4, "identify": 0.2},
}
#: Seconds between progress writes to the database (Redis gets every tick).
DB_PROGRESS_EVERY_S = 2.0


class Cancelled(Exception):
    """The job was cancelled (or already finished): stop without error."""


class GiveUp(Exception):
    """Running the stage again cannot help: fail the job with this message."""


@dataclass
class Context:
    """What every stage needs: settings, database sessions, live status."""

    settings: Settings
    sessions: sessionmaker = field(init=False)
    board: StatusBoard = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = session_factory(self.settings.db_url)
        self.board = StatusBoard(self.settings)


class _Stage:
    """Bookkeeping of one stage run: state, percent, timing, events, cancellation."""

    def __init__(self, ctx: Context, session: Session, job_id: str, name: str) -> None:
        self.ctx, self.session, self.job_id, self.name = ctx, session, job_id, name
        self.state, self.lo, self.hi = STAGES[name]
        self.percent = self.lo
        self.started = time.perf_counter()
        self.last_db = 0.0
        job = crud.get_job(session=session, job_id=job_id)
        if job is None:
            raise Cancelled(f"job {job_id} does not exist")
        if job.state not in ACTIVE_STATES:
            raise Cancelled(f"job {job_id} is {job.state}")
        self.job = job
        # Each delivery of this stage wrote a "started" event. A worker that
        # died mid-stage (killed, out of memory) leaves no other trace, and
        # Dramatiq's retry count only counts exceptions: count deliveries here.
        runs = crud.count_events(session=session, job_id=job_id, message=f"{self.state} started")
        if runs >= ctx.settings.max_deliveries:
            raise GiveUp(
                f"the {self.state} stage was started {runs} times and never finished: its "
                "worker died each time (killed, or out of memory?); not tried again"
            )
        check_disk(ctx.settings.data_dir, ctx.settings.min_disk_space_gb)
        if not crud.update_if_active(
            session=session,
            job_id=job_id,
            state=self.state,
            percent=self.lo,
            event=("stage", f"{self.state} started"),
        ):
            raise Cancelled(f"job {job_id} was cancelled")
        session.refresh(job)
        ctx.board.set(job_id, state=self.state, percent=self.lo, message="")

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress within the stage (0..1); stops if the job is no longer active.

        The percent never goes down, whatever order the engine reports in.
        """
        percent = round(self.lo + (self.hi - self.lo) * min(max(fraction, 0.0), 1.0), 1)
        percent = self.percent = max(percent, self.percent)
        now = time.perf_counter()
        if now - self.last_db >= DB_PROGRESS_EVERY_S:
            self.last_db = now
            # One conditional UPDATE: a cancelled job stops here, and a job that a
            # redelivered copy of this stage already finished is never rewritten.
            if not crud.update_if_active(session=self.session, job_id=self.job_id, percent=percent):
                raise Cancelled(f"job {self.job_id} is no longer active")
        self.ctx.board.set(self.job_id, state=self.state, percent=percent, message=message)

    def engine_progress(self) -> Callable[[str, int, int], None]:
        """A ``progress(stage, done, total)`` for the engine, spread over its stages.

        Raises
        ------
        KeyError
            An engine stage this service stage does not know: a new stage must
            be given its share in `ENGINE_STAGES`, never a silent step back.
        """
        shares = ENGINE_STAGES[self.name]
        names = list(shares)

        def callback(stage: str, done: int, total: int) -> None:
            if stage not in shares:
                raise KeyError(f"engine stage {stage!r} is not in ENGINE_STAGES[{self.name!r}]")
            before = sum(shares[s] for s in names[: names.index(stage)])
            within = shares[stage] * min(done / max(total, 1), 1.0)
            self.progress(before + within, f"{stage} {done}/{total}")

        return callback

    def finish(self, **fields) -> None:
        seconds = round(time.perf_counter() - self.started, 3)
        self.session.refresh(self.job)
        timings = {**self.job.timings, self.state: seconds}
        if not crud.update_if_active(
            session=self.session,
            job_id=self.job_id,
            timings=timings,
            percent=self.hi,
            event=("stage", f"{self.state} done in {seconds} s"),
            **fields,
        ):
            raise Cancelled(f"job {self.job_id} was cancelled")
        self.ctx.board.set(self.job_id, percent=self.hi)


def _config(settings: Settings, params: dict) -> SearchConfig:
    return SearchConfig.from_options(
        params, device=settings.device, memory_gb=settings.job_memory_gb
    )


def _paths(ctx: Context, job_id: str) -> dict[str, Path]:
    root = ctx.settings.job_dir(job_id)
    return {
        "raw": root / "raw",
        "work": root / "work",
        "results": root / "results",
        "images": root / "results" / "images",
    }


def download(ctx: Context, job_id: str) -> None:
    """Get the job's frames from its source into ``raw/`` (or name them in place).

    What the source chose and left out (a survey's night or sector, cache
    hits, local frames that miss the position) becomes job events;
    ``manifest.json`` lists the frames and says where they came from.
    """
    with ctx.sessions() as session:
        stage = _Stage(ctx, session, job_id, "download")
        job = stage.job
        source = get_source(job.source)
        raw = _paths(ctx, job_id)["raw"]
        request = FetchRequest(
            ra=job.ra,
            dec=job.dec,
            radius_arcmin=job.params.get("radius_arcmin", default("radius_arcmin")),
            dest=raw,
            options=job.params,
        )
        result = source.fetch(
            request, lambda done, total, msg: stage.progress(done / max(total, 1), msg)
        )
        for name, reason in result.skipped:
            crud.add_event(
                session=session, job_id=job_id, kind="skipped", message=f"{name}: {reason}"
            )
        for note in result.notes:
            crud.add_event(session=session, job_id=job_id, kind="source", message=note)
        io.write_json(
            raw.parent / "manifest.json",
            {
                "files": [str(p) for p in result.paths],
                "source": result.source or job.source,
                "cache_key": result.cache_key,
                "cache_hit": result.cache_hit,
                "skipped": [list(s) for s in result.skipped],
                "template": [str(p) for p in result.template],
            },
        )
        stage.finish()


def ingest(ctx: Context, job_id: str) -> None:
    """The data service: read every frame's header, validate, register the files."""
    with ctx.sessions() as session:
        stage = _Stage(ctx, session, job_id, "ingest")
        manifest = _read_manifest(ctx, job_id)
        loaded = io.load_frames(
            manifest, on_error="skip", progress=lambda d, t: stage.progress(d / max(t, 1))
        )
        io.check_frames(loaded.frames, skipped=loaded.skipped)
        records = []
        for frame, path in zip(loaded.frames, _frame_paths(manifest, loaded.frames), strict=True):
            assert frame.wcs is not None  # the services search frames with a WCS
            ra, dec = frame.wcs.celestial.pixel_to_world_values(
                (frame.shape[1] - 1) / 2, (frame.shape[0] - 1) / 2
            )
            records.append(
                {
                    "name": frame.name,
                    "path": str(path),
                    "size_bytes": path.stat().st_size,
                    "mjd": frame.mjd,
                    "exptime": frame.exptime,
                    "filter": frame.filter,
                    "ra_center": float(ra),
                    "dec_center": float(dec),
                    "width": frame.shape[1],
                    "height": frame.shape[0],
                }
            )
        crud.register_files(session=session, job_id=job_id, files=records)
        for name, reason in loaded.skipped:
            crud.add_event(
                session=session, job_id=job_id, kind="skipped", message=f"{name}: {reason}"
            )
        stage.finish(
            counts={**stage.job.counts, "frames": len(records), "skipped": len(loaded.skipped)}
        )


def _read_manifest(ctx: Context, job_id: str) -> list[Path]:
    manifest = _paths(ctx, job_id)["raw"].parent / "manifest.json"
    return [Path(p) for p in json.loads(manifest.read_text())["files"]]


def _template_frames(ctx: Context, job_id: str) -> list | None:
    """The template the source delivered (another night, a survey reference), or None."""
    manifest = _paths(ctx, job_id)["raw"].parent / "manifest.json"
    paths = [Path(p) for p in json.loads(manifest.read_text()).get("template", [])]
    return io.load_template(paths) if paths else None


def _frame_paths(paths: list[Path], frames: list) -> list[Path]:
    by_name = {p.name: p for p in paths}
    return [by_name[f.name] for f in frames]


def _registered_frames(session: Session, job_id: str):
    job = crud.get_job(session=session, job_id=job_id)
    if job is None:
        raise Cancelled(f"job {job_id} does not exist")
    paths = [Path(f.path) for f in sorted(job.files, key=lambda f: f.mjd or 0.0)]
    if not paths:
        raise InputError(f"job {job_id} has no registered frames")
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise InputError(
            f"frames are gone from the data folder (cleaned up?): {', '.join(missing)}"
        )
    return io.load_frames(paths).frames


def fast(ctx: Context, job_id: str) -> None:
    """The fast detector: every stage that scans pixels; candidates saved to ``work/``."""
    with ctx.sessions() as session:
        stage = _Stage(ctx, session, job_id, "fast")
        frames = _registered_frames(session, job_id)
        template = _template_frames(ctx, job_id)
        result = fast_detect(
            frames,
            config=_config(ctx.settings, stage.job.params),
            template=template,
            progress=stage.engine_progress(),
        )
        path = io.save_fast_result(_paths(ctx, job_id)["work"] / "fast.npz", result)
        stage.finish(
            counts={
                **stage.job.counts,
                "candidates": len(result.candidates),
                "tracklets": len(result.tracklets),
                "faint_seeds": 0 if result.faint is None else len(result.faint),
                "work_file_bytes": path.stat().st_size,
            }
        )


def detailed(ctx: Context, job_id: str) -> None:
    """The detailed detector: verify and measure tracks, store results, finish the job."""
    with ctx.sessions() as session:
        stage = _Stage(ctx, session, job_id, "detailed")
        config = _config(ctx.settings, stage.job.params)
        started = time.perf_counter()
        fast_result = io.load_fast_result(_paths(ctx, job_id)["work"] / "fast.npz")
        fast_result.timings["handoff"] = time.perf_counter() - started
        progress = stage.engine_progress()
        tracks = detailed_detect(fast_result, config=config, progress=progress)
        frames = _registered_frames(session, job_id)
        run = run_info(fast_result, frames, config)
        params = stage.job.params
        progress("identify", 0, 1)
        reference = frames[fast_result.ref]
        known = identify(
            tracks,
            frames,
            wcs=fast_result.wcs,
            reference=reference,
            settings=ctx.settings,
            # Simulated skies hold no catalogued objects, unless the request says so.
            mode=params.get("known") or ("none" if stage.job.simulated else None),
            observatory_code=params.get("observatory"),
        )
        progress("identify", 1, 1)
        run["timings_s"]["identify"] = round(known.seconds, 4)
        run.update(known.run)
        # Pictures live with the results: they outlive the frames and work arrays.
        run["timings_s"]["pictures"] = write_pictures(
            _paths(ctx, job_id)["images"], tracks, fast_result.differences, [f.mjd for f in frames]
        )
        results = _paths(ctx, job_id)["results"]
        info = ReportInfo.build(
            ctx.settings,
            reference,
            observatory_code=known.observatory_code,
            simulated=stage.job.simulated,
        )
        # A report that would need a guess is not written; the reason is kept for the API.
        run["reports"] = {}
        for name, write in (("report.mpc", mpc_text), ("report.psv", ades_text)):
            try:
                io.write_text(results / name, write(tracks, frames, known=known.known, info=info))
                run["reports"][name] = None
            except ReportError as exc:
                run["reports"][name] = str(exc)
        contract = report.tracks_to_contract(
            tracks, frames=frames, run=run, annotations=known.per_track
        )
        io.write_json(results / "tracks.json", contract)
        crud.replace_tracks(session=session, job_id=job_id, tracks=contract["tracks"])
        stage.finish(
            state="done",
            counts={**stage.job.counts, "tracks": len(tracks)},
            run=contract["run"],
        )
        ctx.board.set(job_id, state="done", percent=100.0, message="")


def fail(ctx: Context, job_id: str, message: str) -> None:
    """Mark a job failed with a message a user can act on (no-op once it has ended)."""
    with ctx.sessions() as session:
        failed = crud.update_if_active(
            session=session,
            job_id=job_id,
            state="failed",
            error=message,
            event=("failed", message),
        )
    if failed:
        ctx.board.set(job_id, state="failed", message=message)
