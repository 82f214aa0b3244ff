"""The embedded deployment: the API server and every stage worker in one process.

Exactly what the services run - the same FastAPI app served by uvicorn over
a real socket, the same Dramatiq actors - with the in-process broker instead
of RabbitMQ and SQLite under ``DATA_DIR``. ``astrohunter serve`` runs it in
the foreground; ``astrohunter search`` without ``--server`` starts it in the
background, talks to it over HTTP like any client, and stops it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["embedded_server", "use_in_process_broker"]

#: Seconds to wait for the server to accept connections, and to stop.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def use_in_process_broker() -> None:
    """Select the in-process broker; must run before any ``app.actors`` module is imported."""
    os.environ["ASTROHUNTER_BROKER"] = "memory"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def embedded_server(*, host: str = "127.0.0.1", port: int = 0, threads: int = 2) -> Iterator[str]:
    """Run the API and the stage workers in this process; yields the server's base URL.

    Parameters
    ----------
    host, port : keyword-only
        Where to listen; port 0 picks a free one.
    threads : int, keyword-only
        Worker threads for the stage actors.

    Raises
    ------
    RuntimeError
        The server did not start listening within ``START_TIMEOUT_S``.
    """
    use_in_process_broker()
    import uvicorn
    from dramatiq import Worker

    from .api.main import create_app
    from .broker import broker

    port = port or _free_port(host)
    server = uvicorn.Server(uvicorn.Config(create_app(), host=host, port=port, log_level="warning"))
    worker = Worker(broker, worker_threads=threads)
    worker.start()
    thread = threading.Thread(target=server.run, name="astrohunter-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded API did not start on {host}:{port}")
            time.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        worker.stop()
