"""Every query the services make (routes and actors never write SQL)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, case, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from .models import ACTIVE_STATES, Event, FileRecord, Job, Observation, TrackRecord

__all__ = [
    "add_event",
    "count_events",
    "create_or_get_job",
    "delete_job",
    "get_job",
    "list_jobs",
    "register_files",
    "replace_tracks",
    "search_key",
    "set_review",
    "tracks_of",
    "update_if_active",
    "update_job",
]


def search_key(*, ra: float, dec: float, source: str, params: dict[str, Any]) -> str:
    """A hash of everything that defines a search, to spot a repeated one."""
    canonical = json.dumps(
        {"ra": round(ra, 7), "dec": round(dec, 7), "source": source, "params": params},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_or_get_job(
    *,
    session: Session,
    ra: float,
    dec: float,
    source: str,
    params: dict[str, Any],
    simulated: bool,
    hold_s: float = 30.0,
) -> tuple[Job, bool]:
    """The running job with these parameters, or a new queued one.

    A new job is saved holding its dispatch lease for ``hold_s`` seconds
    (`app.dispatch`): the caller sends it. A running job is returned as it is
    (`app.service` sends it again when its first message was never confirmed).

    Returns
    -------
    job, created : Job, bool
    """
    key = search_key(ra=ra, dec=dec, source=source, params=params)
    running = session.scalars(
        select(Job)
        .where(Job.params_key == key, Job.state.in_(ACTIVE_STATES))
        .order_by(Job.created_at.desc())
        .limit(1)
    ).first()
    if running is not None:
        return running, False
    job = Job(
        ra=ra,
        dec=dec,
        source=source,
        params=params,
        params_key=key,
        simulated=simulated,
        dispatch_lease=time.time() + hold_s,
    )
    session.add(job)
    session.flush()
    session.add(
        Event(job_id=job.id, kind="created", message=f"search at RA {ra} Dec {dec} ({source})")
    )
    session.commit()
    return job, True


def get_job(*, session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def list_jobs(
    *, session: Session, state: str | None = None, offset: int = 0, limit: int = 50
) -> tuple[Sequence[Job], int]:
    """A page of jobs, newest first, and the total count."""
    query = select(Job)
    count = select(func.count()).select_from(Job)
    if state:
        query, count = query.where(Job.state == state), count.where(Job.state == state)
    jobs = session.scalars(query.order_by(Job.created_at.desc()).offset(offset).limit(limit)).all()
    return jobs, int(session.scalar(count) or 0)


#: ``(kind, message)`` of a job event written with a state change.
EventText = tuple[str, str]


def update_job(
    *, session: Session, job_id: str, event: EventText | None = None, **fields: Any
) -> Job:
    """Set fields of a job, and record ``event`` with them in the same commit."""
    job = session.get(Job, job_id)
    if job is None:
        raise KeyError(job_id)
    for name, value in fields.items():
        setattr(job, name, value)
    if event is not None:
        session.add(Event(job_id=job_id, kind=event[0], message=event[1]))
    session.commit()
    return job


def update_if_active(
    *, session: Session, job_id: str, event: EventText | None = None, **fields: Any
) -> bool:
    """Set fields of a job only while it is still active, in one statement.

    A cancel (DELETE) may land at any moment; checking and writing in a
    single UPDATE means a stage can never overwrite it. ``percent`` never
    goes down (a stage delivered twice restarts its own count, not the
    job's). ``event`` is recorded in the same transaction, so a reader sees
    both or neither. Returns False when the job was no longer active
    (nothing written).
    """
    if "percent" in fields:
        new = fields["percent"]
        fields["percent"] = case((Job.percent > new, Job.percent), else_=new)
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.state.in_(ACTIVE_STATES)).values(**fields)
    )
    written = cast(CursorResult, result).rowcount == 1
    if written and event is not None:
        session.add(Event(job_id=job_id, kind=event[0], message=event[1]))
    session.commit()
    return written


def add_event(*, session: Session, job_id: str, kind: str, message: str = "") -> None:
    session.add(Event(job_id=job_id, kind=kind, message=message))
    session.commit()


def count_events(*, session: Session, job_id: str, message: str) -> int:
    """How many of a job's events say ``message`` (e.g. how often a stage started)."""
    count = session.scalar(
        select(func.count()).where(Event.job_id == job_id, Event.message == message)
    )
    return int(count or 0)


def delete_job(*, session: Session, job_id: str) -> bool:
    """Remove a job and everything recorded about it (files, tracks, events)."""
    job = session.get(Job, job_id)
    if job is None:
        return False
    session.delete(job)
    session.commit()
    return True


def register_files(*, session: Session, job_id: str, files: Sequence[dict[str, Any]]) -> None:
    """Record a job's frames; a name already recorded is updated, not duplicated."""
    existing = {
        f.name: f for f in session.scalars(select(FileRecord).where(FileRecord.job_id == job_id))
    }
    for info in files:
        record = existing.get(info["name"])
        if record is None:
            session.add(FileRecord(job_id=job_id, **info))
        else:
            for name, value in info.items():
                setattr(record, name, value)
    session.commit()


def replace_tracks(*, session: Session, job_id: str, tracks: Sequence[dict[str, Any]]) -> None:
    """Store a job's tracks (contract dicts), replacing any from an earlier delivery."""
    session.execute(delete(TrackRecord).where(TrackRecord.job_id == job_id))
    for t in tracks:
        record = TrackRecord(
            job_id=job_id,
            designation=t["id"],
            rate_arcsec_per_hour=t["rate_arcsec_per_hour"],
            position_angle_deg=t["position_angle_deg"],
            stacked_snr=t["stacked_snr"],
            known_object=t.get("known_object"),
            document=dict(t),
        )
        record.observations = [
            Observation(
                mjd=o["mjd"],
                ra=o["ra"],
                dec=o["dec"],
                ra_err_arcsec=o.get("ra_err_arcsec"),
                dec_err_arcsec=o.get("dec_err_arcsec"),
                mag=o.get("mag"),
                snr=o.get("snr"),
                frame=o.get("frame"),
            )
            for o in t["observations"]
        ]
        session.add(record)
    session.commit()


def tracks_of(*, session: Session, job_id: str) -> list[dict[str, Any]]:
    """A job's tracks in the shared tracks contract's form, each with its ``review``."""
    records = session.scalars(
        select(TrackRecord)
        .where(TrackRecord.job_id == job_id)
        .options(selectinload(TrackRecord.observations))
        .order_by(TrackRecord.designation)
    ).all()
    return [_track(r) for r in records]


def _track_record(session: Session, job_id: str, designation: str) -> TrackRecord | None:
    return session.scalars(
        select(TrackRecord)
        .where(TrackRecord.job_id == job_id, TrackRecord.designation == designation)
        .options(selectinload(TrackRecord.observations))
    ).first()


def track_of(*, session: Session, job_id: str, designation: str) -> dict[str, Any] | None:
    """One track of a job as `tracks_of` gives it; None when the job has no such track."""
    record = _track_record(session, job_id, designation)
    return None if record is None else _track(record)


def set_review(
    *, session: Session, job_id: str, designation: str, state: str
) -> dict[str, Any] | None:
    """Record a reviewer's decision on a track, now; the track as `tracks_of` gives it.

    Returns None when the job has no track of that designation.
    """
    record = _track_record(session, job_id, designation)
    if record is None:
        return None
    record.review, record.reviewed_at = state, dt.datetime.now(dt.UTC)
    session.commit()
    return _track(record)


def _review(r: TrackRecord) -> dict[str, Any]:
    review: dict[str, Any] = {"state": r.review or "pending"}
    if r.reviewed_at is not None:  # SQLite gives back naive times: they were UTC
        at = r.reviewed_at
        review["at"] = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    return review


def _track(r: TrackRecord) -> dict[str, Any]:
    if r.document is not None:
        return {**r.document, "review": _review(r)}
    # A row written before the contract's 1.1: rebuilt from its columns.
    observations = []
    for o in r.observations:
        obs: dict[str, Any] = {"mjd": o.mjd, "ra": o.ra, "dec": o.dec}
        for name in ("ra_err_arcsec", "dec_err_arcsec"):
            if getattr(o, name) is not None:
                obs[name] = getattr(o, name)
        obs.update(mag=o.mag, snr=o.snr)
        if o.frame is not None:
            obs["frame"] = o.frame
        observations.append(obs)
    return {
        "id": r.designation,
        "observations": observations,
        "rate_arcsec_per_hour": r.rate_arcsec_per_hour,
        "position_angle_deg": r.position_angle_deg,
        "stacked_snr": r.stacked_snr,
        "known_object": r.known_object,
        "review": _review(r),
    }
