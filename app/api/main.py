"""The API gateway: FastAPI app that only includes the route modules."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from detectors import __version__

from ..config import get_settings
from ..db.base import init_db
from ..status import StatusBoard
from .routes import health, jobs, search

__all__ = ["create_app"]


def _send_to_downloader(job_id: str) -> None:
    from ..actors.download import download

    download.send(job_id)


def create_app(*, dispatch: Callable[[str], None] = _send_to_downloader) -> FastAPI:
    """The API; ``dispatch(job_id)`` starts a queued job (the downloader actor by default)."""
    settings = get_settings()
    init_db(settings.db_url)
    app = FastAPI(
        title="AstroHunter",
        version=__version__,
        description="Find asteroids in images of a sky position: submit a search, follow it, read its tracks.",
    )
    app.state.board = StatusBoard(settings)
    app.state.dispatch = dispatch
    for module in (search, jobs, health):
        app.include_router(module.router)
    return app
