"""Job status, listing, results and cancellation."""

from __future__ import annotations

import re
import shutil
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import FileResponse, PlainTextResponse

from detectors.contract import SCHEMA_VERSION, ReviewState, TrackOut, TracksDocument
from detectors.report_select import SELECTORS, report_names

from ...db import crud
from ...db.models import ACTIVE_STATES, STATES, Job
from ...pictures import picture_names, strip_png
from ...schemas import JobList, JobPublic, ReviewUpdate
from ...status import StatusBoard
from ..deps import BoardDep, JobIdDep, SessionDep, SettingsDep, require_api_key

router = APIRouter(tags=["jobs"])

#: A picture's file name: what the detailed stage writes, and nothing that walks a path.
_IMAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\.png")

#: A job's pictures never change once written: browsers may keep them.
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
#: ``?review=`` of the reports: only the tracks a reviewer left in this state.
ReviewQuery = Query(None, description="only tracks in this review state, e.g. confirmed")

#: Job events a user should see in the status (the rest is stage bookkeeping).
NOTE_KINDS = ("skipped", "source", "cleanup", "failed", "cancelled")


def _public(job: Job, board: StatusBoard) -> JobPublic:
    live = board.get(job.id) if job.state in ACTIVE_STATES else None
    state, percent, message = job.state, job.percent, ""
    if live and live.get("state") in ACTIVE_STATES:
        state = live["state"]
        # Redis gets every tick, the database the highest percent so far: a
        # stage delivered twice restarts its count in Redis, never the job's.
        percent = max(percent, float(live.get("percent", percent)))
        message = live.get("message", "")
    return JobPublic(
        job_id=job.id,
        state=state,
        percent=percent,
        message=message,
        ra=job.ra,
        dec=job.dec,
        source=job.source,
        simulated=job.simulated,
        params=job.params,
        created_at=job.created_at,
        updated_at=job.updated_at,
        timings_s=job.timings,
        counts=job.counts,
        error=job.error,
        frames_cleaned=job.frames_cleaned,
        notes=[f"{e.kind}: {e.message}" for e in job.events if e.kind in NOTE_KINDS],
        live=live is not None,
    )


def _job(session, job_id: str) -> Job:
    job = crud.get_job(session=session, job_id=job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
    return job


def _finished(session, job_id: str, what: str) -> Job:
    """The job, if it is done; 409 naming its state otherwise (404 when there is none)."""
    job = _job(session, job_id)
    if job.state != "done":
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is {job.state}: no {what}")
    return job


def _reviewed(session, job_id: str, text: str, review: str | None, kind: str) -> str:
    """A report's text with only the tracks in state ``review`` (all when None)."""
    if review is None:
        return text
    names: set[str] = set()
    for track in crud.tracks_of(session=session, job_id=job_id):
        if track["review"]["state"] == review:
            names |= report_names(track)
    return SELECTORS[kind](text, names)


@router.get("/status/{job_id}", response_model=JobPublic, name="job_status")
def job_status(job_id: JobIdDep, session: SessionDep, board: BoardDep):
    """State, percent, per-stage seconds, counts and error of a job."""
    return _public(_job(session, job_id), board)


@router.get("/jobs", response_model=JobList)
def jobs(
    session: SessionDep,
    board: BoardDep,
    state: str | None = Query(None, description=f"one of {', '.join(STATES)}"),
    offset: int = Query(0, ge=0, le=1_000_000_000),
    limit: int = Query(50, ge=1, le=500),
):
    """Jobs, newest first, a page at a time."""
    if state is not None and state not in STATES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"state must be one of {', '.join(STATES)}"
        )
    page, total = crud.list_jobs(session=session, state=state, offset=offset, limit=limit)
    return JobList(total=total, offset=offset, limit=limit, jobs=[_public(j, board) for j in page])


@router.get(
    "/jobs/{job_id}/tracks",
    response_model=TracksDocument,
    response_model_exclude_none=True,
    responses={409: {"description": "the job is not done (queued, running, failed, cancelled)"}},
)
def job_tracks(job_id: JobIdDep, session: SessionDep):
    """The results of a finished job, in the tracks contract (``detectors/contracts``)."""
    job = _finished(session, job_id, "tracks")
    files = sorted(job.files, key=lambda f: f.mjd or 0.0)
    field: dict[str, Any] = {"ra": job.ra, "dec": job.dec, "frames": len(files)}
    if files and files[0].mjd is not None:
        field.update(mjd_start=files[0].mjd, mjd_end=files[-1].mjd)
    return {
        "schema_version": SCHEMA_VERSION,
        "field": field,
        "tracks": crud.tracks_of(session=session, job_id=job_id),
        "run": {**job.run, "simulated": job.simulated, "state": job.state},
    }


@router.patch(
    "/jobs/{job_id}/tracks/{track_id}",
    response_model=TrackOut,
    response_model_exclude_none=True,
    dependencies=[Depends(require_api_key)],
    responses={
        404: {"description": "no such job, or no such track in it"},
        409: {"description": "the job is not done"},
    },
)
def review_track(job_id: JobIdDep, track_id: str, body: ReviewUpdate, session: SessionDep):
    """Confirm or reject a track of a finished job; ``pending`` undoes it. Kept with the time."""
    _finished(session, job_id, "tracks to review")
    track = crud.set_review(session=session, job_id=job_id, designation=track_id, state=body.review)
    if track is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} has no track {track_id}")
    return track


def _report(
    job_id: str, name: str, session, settings, review: str | None = None
) -> PlainTextResponse:
    """A done job's report file (of the tracks in state ``review`` only, when given), or 409
    saying why it was not written."""
    job = _finished(session, job_id, "report")
    path = settings.job_dir(job_id) / "results" / name
    if not path.exists():
        why = (job.run.get("reports") or {}).get(name) or "it was not written"
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} has no {name}: {why}")
    text = _reviewed(session, job_id, path.read_text(), review, name.rpartition(".")[2])
    return PlainTextResponse(text, media_type="text/plain")


@router.get(
    "/jobs/{job_id}/report.mpc",
    response_class=PlainTextResponse,
    responses={409: {"description": "the job is not done, or the report lacks a setting"}},
)
def job_report(
    job_id: JobIdDep,
    session: SessionDep,
    settings: SettingsDep,
    review: ReviewState | None = ReviewQuery,
):
    """The MPC 1992 80-column report of a finished job (header lines, known designations);
    ``?review=confirmed``: the confirmed tracks only."""
    return _report(job_id, "report.mpc", session, settings, review)


@router.get(
    "/jobs/{job_id}/report.psv",
    response_class=PlainTextResponse,
    responses={409: {"description": "the job is not done, or the report lacks a setting"}},
)
def job_report_ades(
    job_id: JobIdDep,
    session: SessionDep,
    settings: SettingsDep,
    review: ReviewState | None = ReviewQuery,
):
    """The ADES PSV report of a finished job (what the MPC takes today); ``?review=confirmed``:
    the confirmed tracks only."""
    return _report(job_id, "report.psv", session, settings, review)


@router.get("/jobs/{job_id}/images", response_model=list[str])
def job_images(job_id: JobIdDep, session: SessionDep, settings: SettingsDep):
    """Names of a finished job's pictures: ``overview.png``, a blink strip per track, and the
    review page's ``field.png`` and ``stamps-<k>.png``."""
    _finished(session, job_id, "images")
    return picture_names(settings.job_dir(job_id) / "results" / "images")


@router.get(
    "/jobs/{job_id}/images/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
)
def job_image(job_id: JobIdDep, name: str, session: SessionDep, settings: SettingsDep):
    """One picture of a finished job (names from ``GET /jobs/{id}/images``); a track's
    blink strip is cut from the review sheets the first time it is asked for."""
    _finished(session, job_id, "images")
    if not _IMAGE_NAME.fullmatch(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such image")
    folder = settings.job_dir(job_id) / "results" / "images"
    path = folder / name
    if not path.is_file():
        track = crud.track_of(session=session, job_id=job_id, designation=name.removesuffix(".png"))
        made = None if track is None else strip_png(folder, track)
        if made is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no image {name}")
    return FileResponse(path, media_type="image/png", headers=_IMMUTABLE)


@router.get("/jobs/{job_id}/truth", responses={404: {"description": "not a simulated job"}})
def job_truth(job_id: JobIdDep, session: SessionDep, settings: SettingsDep):
    """The simulator's truth of a simulated job (what was injected), to score its tracks."""
    job = _job(session, job_id)
    path = settings.job_dir(job_id) / "truth.json"
    if not job.simulated or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} has no simulator truth")
    return FileResponse(path, media_type="application/json")


@router.delete(
    "/jobs/{job_id}",
    response_model=JobPublic,
    dependencies=[Depends(require_api_key)],
    responses={204: {"description": "the finished job and its files were removed"}},
)
def delete(job_id: JobIdDep, session: SessionDep, board: BoardDep, settings: SettingsDep):
    """Cancel a queued or running job (200, its state); remove a finished one (204).

    A job that is done, failed or cancelled is deleted with its frames, work
    arrays and results: afterwards every endpoint answers 404 for it. A
    ``local`` source's frames are the user's own files and are never touched.
    """
    job = _job(session, job_id)
    if job.state in ACTIVE_STATES:
        if crud.update_if_active(
            session=session,
            job_id=job_id,
            state="cancelled",
            event=("cancelled", "cancelled by request"),
        ):
            board.set(job_id, state="cancelled")
            session.refresh(job)
            return _public(job, board)
    crud.delete_job(session=session, job_id=job_id)
    board.forget(job_id)
    shutil.rmtree(settings.job_dir(job_id), ignore_errors=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
