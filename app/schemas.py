"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detectors.config import PARAMETERS
from detectors.contract import ReviewState

__all__ = [
    "JobList",
    "JobPublic",
    "ReviewUpdate",
    "SearchAccepted",
    "SearchRequest",
    "SourceInfo",
]


def _setting(name: str) -> Any:
    """A request field declared by the engine's settings table (default, limits, help).

    Strict: ``"ra": true`` is not 1.0 and ``"faint": "yes"`` is not true.
    Non-finite numbers (NaN, Infinity, 1e400) are refused.
    """
    p = PARAMETERS[name]
    return Field(
        p.default,
        gt=p.gt,
        ge=p.ge,
        le=p.le,
        description=p.describe(),
        strict=True,
        allow_inf_nan=False,
    )


#: Earliest and latest times a window may name: astronomical CCDs, and no overflow
#: when a time zone moves a date out of the calendar.
_WINDOW = (dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(2200, 1, 1, tzinfo=dt.UTC))


class SearchRequest(BaseModel):
    """``POST /search``: where to look, where the frames come from, what to find."""

    model_config = ConfigDict(extra="forbid")

    ra: float = Field(
        ...,
        ge=0.0,
        lt=360.0,
        strict=True,
        allow_inf_nan=False,
        description="right ascension, degrees (ICRS)",
    )
    dec: float = Field(
        ...,
        ge=-90.0,
        le=90.0,
        strict=True,
        allow_inf_nan=False,
        description="declination, degrees (ICRS)",
    )
    radius_arcmin: float = _setting("radius_arcmin")
    source: str = Field(
        "auto",
        max_length=32,
        strict=True,
        description="frame source (default: the best real survey); GET /sources lists them",
    )
    path: str | None = Field(
        None, max_length=4096, strict=True, description="folder or glob, for source 'local'"
    )
    template_path: str | None = Field(
        None,
        max_length=4096,
        strict=True,
        description="folder or glob of frames of the same field from another night (or one "
        "deep coadd), subtracted instead of the night's own median, for source 'local'",
    )
    survey_reference: bool = Field(
        False,
        strict=True,
        description="source 'ztf': subtract ZTF's reference image of the field and filter "
        "instead of the night's own median",
    )
    start: dt.datetime | None = Field(None, description="time window start (UTC)")
    end: dt.datetime | None = Field(None, description="time window end (UTC)")
    rate_min: float = _setting("rate_min")
    rate_max: float = _setting("rate_max")
    faint: bool = _setting("faint")
    seed: int = _setting("seed")
    observatory: str | None = Field(
        None,
        pattern=r"^[0-9A-Z][0-9][0-9]$",
        strict=True,
        description="MPC observatory code for the reports (default: the settings', or the "
        "frames' site matched to the MPC's list)",
    )
    known: Literal["auto", "mpcorb", "skybot", "none"] | None = Field(
        None,
        description="identify known objects from the orbit catalogue, SkyBoT (online), or not "
        "(default: the settings'; simulated fields: none)",
    )

    @field_validator("path", "template_path")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 for c in value):
            raise ValueError("must not hold control characters (NUL, newline, ...)")
        return value

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        """Times without a zone are UTC, so naive and aware times compare."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        try:
            value = value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError("is outside the calendar once converted to UTC") from None
        if not _WINDOW[0] <= value < _WINDOW[1]:
            raise ValueError(f"must lie between {_WINDOW[0]:%Y} and {_WINDOW[1]:%Y}")
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


class ReviewUpdate(BaseModel):
    """``PATCH /jobs/{id}/tracks/{track_id}``: a reviewer's decision (``pending`` undoes one)."""

    model_config = ConfigDict(extra="forbid")

    review: ReviewState = Field(..., description="pending, confirmed or rejected")


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
