"""Job status, listing, results and cancellation."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import PlainTextResponse

from ...db import crud
from ...db.models import ACTIVE_STATES, STATES, Job
from ...schemas import JobList, JobPublic
from ...status import StatusBoard
from ..deps import BoardDep, SessionDep, SettingsDep, require_api_key

router = APIRouter(tags=["jobs"])

#: Job events a user should see in the status (the rest is stage bookkeeping).
NOTE_KINDS = ("skipped", "source", "cleanup", "failed", "cancelled")


def _public(job: Job, board: StatusBoard) -> JobPublic:
    live = board.get(job.id) if job.state in ACTIVE_STATES else None
    state, percent, message = job.state, job.percent, ""
    if live and live.get("state") in ACTIVE_STATES:
        state = live["state"]
        percent = float(live.get("percent", percent))
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


@router.get("/status/{job_id}", response_model=JobPublic, name="job_status")
def job_status(job_id: str, session: SessionDep, board: BoardDep):
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


@router.get("/jobs/{job_id}/tracks")
def job_tracks(job_id: str, session: SessionDep):
    """The job's results in the shared tracks contract (``tracks.schema.json``)."""
    job = _job(session, job_id)
    files = sorted(job.files, key=lambda f: f.mjd or 0.0)
    field = {"ra": job.ra, "dec": job.dec, "frames": len(files)}
    if files and files[0].mjd is not None:
        field.update(mjd_start=files[0].mjd, mjd_end=files[-1].mjd)
    return {
        "field": field,
        "tracks": crud.tracks_of(session=session, job_id=job_id),
        "run": {**job.run, "simulated": job.simulated, "state": job.state},
    }


@router.get("/jobs/{job_id}/report.mpc", response_class=PlainTextResponse)
def job_report(job_id: str, session: SessionDep, settings: SettingsDep):
    """The MPC 1992 80-column report of a finished job."""
    job = _job(session, job_id)
    path = settings.job_dir(job_id) / "results" / "report.mpc"
    if job.state != "done" or not path.exists():
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is {job.state}: no report yet")
    return PlainTextResponse(path.read_text(), media_type="text/plain")


@router.delete("/jobs/{job_id}", response_model=JobPublic, dependencies=[Depends(require_api_key)])
def cancel(job_id: str, session: SessionDep, board: BoardDep):
    """Cancel a queued or running job; its files become eligible for cleanup."""
    job = _job(session, job_id)
    if job.state in ACTIVE_STATES:
        crud.update_job(session=session, job_id=job_id, state="cancelled")
        crud.add_event(
            session=session, job_id=job_id, kind="cancelled", message="cancelled by request"
        )
        board.set(job_id, state="cancelled")
    return _public(job, board)
