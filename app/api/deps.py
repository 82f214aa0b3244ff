"""FastAPI dependencies: settings, a database session, the status board."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from sqlalchemy.orm import Session

from ..config import Settings, get_settings
from ..db.base import session_factory
from ..status import StatusBoard

__all__ = ["BoardDep", "SessionDep", "SettingsDep", "require_api_key"]


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
    if settings.api_key and not (x_api_key and secrets.compare_digest(x_api_key, settings.api_key)):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key")


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(_session)]
BoardDep = Annotated[StatusBoard, Depends(_board)]
