"""Tables: jobs, their files, tracks and observations, and job events."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base

__all__ = ["ACTIVE_STATES", "STATES", "Event", "FileRecord", "Job", "Observation", "TrackRecord"]

#: Job states in pipeline order, then the three final ones.
STATES = (
    "queued",
    "downloading",
    "ingesting",
    "fast_detect",
    "detailed_detect",
    "done",
    "failed",
    "cancelled",
)
#: States whose files must never be cleaned up.
ACTIVE_STATES = STATES[:5]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


class Job(Base):
    """One search: a sky position, where its frames come from, and how far it got."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now
    )
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    percent: Mapped[float] = mapped_column(Float, default=0.0)
    ra: Mapped[float] = mapped_column(Float)
    dec: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    params_key: Mapped[str] = mapped_column(String(64), index=True)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    run: Mapped[dict] = mapped_column(JSON, default=dict)
    frames_cleaned: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the broker confirmed the job's first message (None: not sent yet).
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    #: Until when (Unix seconds) one API process holds the right to send it: an
    #: API that dies between saving the job and sending it lets the lease lapse.
    dispatch_lease: Mapped[float | None] = mapped_column(Float, nullable=True)

    files: Mapped[list[FileRecord]] = relationship(
        back_populates="job", cascade="all, delete-orphan"
    )
    tracks: Mapped[list[TrackRecord]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="TrackRecord.designation"
    )
    events: Mapped[list[Event]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="Event.id"
    )


class FileRecord(Base):
    """A frame of a job: where it is on disk and what its header says."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("job_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    mjd: Mapped[float | None] = mapped_column(Float, nullable=True)
    exptime: Mapped[float | None] = mapped_column(Float, nullable=True)
    filter: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ra_center: Mapped[float | None] = mapped_column(Float, nullable=True)
    dec_center: Mapped[float | None] = mapped_column(Float, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    job: Mapped[Job] = relationship(back_populates="files")


class TrackRecord(Base):
    """A moving object found by a job."""

    __tablename__ = "tracks"
    __table_args__ = (UniqueConstraint("job_id", "designation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    designation: Mapped[str] = mapped_column(String(16))
    rate_arcsec_per_hour: Mapped[float] = mapped_column(Float)
    position_angle_deg: Mapped[float] = mapped_column(Float)
    stacked_snr: Mapped[float] = mapped_column(Float)
    known_object: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The track as the tracks contract writes it (None in rows of versions before 1.1).
    document: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: The reviewer's decision (pending, confirmed, rejected; None: never reviewed) and when.
    review: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    job: Mapped[Job] = relationship(back_populates="tracks")
    observations: Mapped[list[Observation]] = relationship(
        back_populates="track", cascade="all, delete-orphan", order_by="Observation.mjd"
    )


class Observation(Base):
    """One measurement of a track in one frame."""

    __tablename__ = "observations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    mjd: Mapped[float] = mapped_column(Float)
    ra: Mapped[float] = mapped_column(Float)
    dec: Mapped[float] = mapped_column(Float)
    ra_err_arcsec: Mapped[float | None] = mapped_column(Float, nullable=True)
    dec_err_arcsec: Mapped[float | None] = mapped_column(Float, nullable=True)
    mag: Mapped[float | None] = mapped_column(Float, nullable=True)
    snr: Mapped[float | None] = mapped_column(Float, nullable=True)
    frame: Mapped[str | None] = mapped_column(String(255), nullable=True)

    track: Mapped[TrackRecord] = relationship(back_populates="observations")


class Event(Base):
    """Something that happened to a job (stage started or finished, retry, cleanup)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")

    job: Mapped[Job] = relationship(back_populates="events")
