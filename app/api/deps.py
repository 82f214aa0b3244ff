"""FastAPI dependencies: settings, a database session, the status board."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from sqlalchemy.orm import Session

from ..config import Settings, get_settings
from ..db.base import session_factory
from ..status import StatusBoard

__all__ = ["BoardDep", "JobIdDep", "SessionDep", "SettingsDep", "require_api_key"]

#: A job id: what ``uuid4().hex`` gives.
_JOB_ID = re.compile(r"[0-9a-f]{32}")


def _session(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    with session_factory(settings.db_url)() as session:
        yield session


def _board(request: Request) -> StatusBoard:
    return request.app.state.board


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    """Guard for write endpoints when ``ASTROHUNTER_API_KEY`` is set (header ``X-API-Key``)."""
    if not settings.api_key:
        return
    # Compared as bytes, in constant time: a header may hold any byte, not only ASCII.
    given = (x_api_key or "").encode("utf-8", "surrogateescape")
    if not (x_api_key and secrets.compare_digest(given, settings.api_key.encode("utf-8"))):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key")


def _job_id(job_id: str) -> str:
    """The path's job id, checked before any query: anything but 32 hex digits is no job."""
    if not _JOB_ID.fullmatch(job_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job (a job id is 32 hex digits)")
    return job_id


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(_session)]
BoardDep = Annotated[StatusBoard, Depends(_board)]
JobIdDep = Annotated[str, Depends(_job_id)]
