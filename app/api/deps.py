"""FastAPI dependencies: settings, a database session, the status board."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from ..config import Settings, get_settings
from ..db.base import session_factory
from ..status import StatusBoard

__all__ = ["BoardDep", "SessionDep", "SettingsDep"]


def _session(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    with session_factory(settings.db_url)() as session:
        yield session


def _board(request: Request) -> StatusBoard:
    return request.app.state.board


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(_session)]
BoardDep = Annotated[StatusBoard, Depends(_board)]
