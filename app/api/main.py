"""The API gateway: FastAPI app that only includes the route modules."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from detectors import __version__

from ..config import get_settings
from ..db.base import init_db
from ..status import StatusBoard
from .routes import health, jobs, search, storage

__all__ = ["MAX_BODY_BYTES", "create_app"]

#: Largest request body accepted; a search request is a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _too_large(send, self.max_bytes)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            return await self.app(scope, limited, send)
        except _TooLarge:
            return await _too_large(send, self.max_bytes)


class _TooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = f'{{"detail": "request body over {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


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
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.state.board = StatusBoard(settings)
    app.state.dispatch = dispatch
    for module in (search, jobs, health, storage):
        app.include_router(module.router)
    return app
