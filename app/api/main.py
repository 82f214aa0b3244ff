"""The API gateway: FastAPI app that only includes the route modules.

The docs page (``/docs``) loads its scripts from the package (fastapi-offline
ships Swagger UI), so it works with no network. ReDoc is off: its bundle
still fetches a logo from a CDN.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from detectors import __version__

from ..broker import probe
from ..config import Settings, get_settings
from ..db.base import init_db, session_factory
from ..dispatch import Dispatcher, resend_orphans
from ..status import StatusBoard
from .routes import health, jobs, review, search, storage

__all__ = ["MAX_BODY_BYTES", "create_app"]

#: Largest request body accepted; a search request is a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
#: Seconds between the API's background checks (broker probe, unsent jobs).
WATCH_EVERY_S = 5.0

log = logging.getLogger(__name__)


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, declared or streamed.

    The body is read here, up to the limit, before the app sees it: a chunked
    body (no Content-Length) that grows too large is refused the same way as
    one that declares its size, never half-parsed by the app.
    """

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _too_large(send, self.max_bytes)
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client left before sending its body
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return await _too_large(send, self.max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        return await self.app(scope, replay, send)


async def _too_large(send, limit: int) -> None:
    body = f'{{"detail": "request body over {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _unprocessable(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field; the offending input is not echoed (NaN is not JSON)."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": [str(part) for part in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


class _Watch:
    """The API's background checks, every `WATCH_EVERY_S` seconds in one thread.

    The broker's health is probed here, never on a request, so ``/health``
    answers at once even while RabbitMQ blocks publishers; and jobs saved
    but never sent (their API died in between) are sent again.
    """

    def __init__(self, settings: Settings, dispatch: Dispatcher) -> None:
        self.settings, self.dispatch = settings, dispatch
        self.broker: tuple[bool, str] = (False, "not probed yet (the API is starting)")
        self._stop = threading.Event()

    def once(self) -> None:
        self.broker = probe(self.settings)
        try:
            with session_factory(self.settings.db_url)() as session:
                resend_orphans(
                    session=session, dispatch=self.dispatch, hold_s=self.settings.redispatch_after_s
                )
        except Exception:  # the database may be down for a moment: try again next round
            log.exception("could not look for unsent jobs")

    def _run(self) -> None:
        self.once()
        while not self._stop.wait(WATCH_EVERY_S):
            self.once()

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        # Never on the way to serving: a broker that hangs must not keep the API down.
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="astrohunter-watch", daemon=True).start()
        yield
        self._stop.set()


def create_app(*, dispatch: Callable[[str], object] | None = None) -> FastAPI:
    """The API; ``dispatch(job_id)`` sends a queued job's first message (the downloader actor).

    Sends are bounded in time (`app.dispatch.Dispatcher`); a background
    thread probes the broker and sends jobs whose first message was lost.
    """
    if dispatch is None:
        # Imported now, not on the first search: the actors import the whole
        # engine (seconds), which a send's deadline must not pay for.
        from ..actors.download import download

        dispatch = download.send
    assert dispatch is not None
    settings = get_settings()
    init_db(settings.db_url)
    dispatcher = Dispatcher(dispatch, timeout_s=settings.publish_timeout_s)
    watch = _Watch(settings, dispatcher)
    app = FastAPIOffline(
        lifespan=watch.lifespan,
        redoc_url=None,
        title="AstroHunter",
        version=__version__,
        description="Find asteroids in images of a sky position: submit a search, follow it, read its tracks.",
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, _unprocessable)
    app.state.board = StatusBoard(settings)
    app.state.dispatch = dispatcher
    app.state.watch = watch
    for module in (search, jobs, health, storage, review):
        app.include_router(module.router)
    return app
