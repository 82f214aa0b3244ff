"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["JobList", "JobPublic", "SearchAccepted", "SearchRequest", "SourceInfo"]


class SearchRequest(BaseModel):
    """``POST /search``: where to look, where the frames come from, what to find."""

    model_config = ConfigDict(extra="forbid")

    ra: float = Field(..., ge=0.0, lt=360.0, description="right ascension, degrees (ICRS)")
    dec: float = Field(..., ge=-90.0, le=90.0, description="declination, degrees (ICRS)")
    radius_arcmin: float = Field(6.0, gt=0.0, le=60.0, description="half-width of the field")
    source: str = Field(
        "auto", description="frame source (default: the best real survey); GET /sources lists them"
    )
    path: str | None = Field(None, description="folder or glob, for source 'local'")
    start: dt.datetime | None = Field(None, description="time window start (UTC)")
    end: dt.datetime | None = Field(None, description="time window end (UTC)")
    rate_min: float = Field(1.0, ge=0.0, description="slowest motion searched, arcsec/h")
    rate_max: float = Field(150.0, gt=0.0, le=36000.0, description="fastest motion, arcsec/h")
    faint: bool = Field(True, description="run the faint (shift-and-stack) search")
    seed: int = Field(0, ge=0, description="simulated source: which realisation")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        """Times without a zone are UTC, so naive and aware times compare."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    @model_validator(mode="after")
    def _ranges(self) -> SearchRequest:
        if self.rate_min >= self.rate_max:
            raise ValueError("rate_min must be below rate_max")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end (time window)")
        return self

    def params(self) -> dict[str, Any]:
        """The job's parameters (everything but position and source), JSON-safe."""
        out = self.model_dump(exclude={"ra", "dec", "source"}, mode="json")
        return {k: v for k, v in out.items() if v is not None}


class SearchAccepted(BaseModel):
    job_id: str
    status_url: str
    state: str
    duplicate_of_running: bool = Field(
        description="true when an identical search was already running"
    )


class JobPublic(BaseModel):
    """``GET /status/{id}``: where a job is and what it has found so far."""

    job_id: str
    state: str
    percent: float
    message: str = ""
    ra: float
    dec: float
    source: str
    simulated: bool
    params: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    timings_s: dict[str, float]
    counts: dict[str, int]
    error: str | None = None
    frames_cleaned: bool = False
    notes: list[str] = Field(
        default_factory=list, description="skipped frames, source and cleanup notes"
    )
    live: bool = Field(description="true when state and percent came from Redis (live)")


class JobList(BaseModel):
    total: int
    offset: int
    limit: int
    jobs: list[JobPublic]


class SourceInfo(BaseModel):
    name: str
    simulated: bool
    description: str
    coverage: str
