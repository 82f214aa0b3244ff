"""``GET /health``: can this deployment run a search right now?"""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import text

from ..deps import BoardDep, SessionDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(
    request: Request,
    response: Response,
    session: SessionDep,
    board: BoardDep,
    settings: SettingsDep,
):
    """Broker, Redis, database and disk; 503 when a search could not run (Redis is optional).

    The broker's state is the API's last background probe (a few seconds old
    at most), so this answers at once even while RabbitMQ blocks publishers.
    """
    checks: dict[str, dict] = {}
    ok, detail = request.app.state.watch.broker
    checks["broker"] = {"ok": ok, "detail": detail}
    checks["redis"] = {
        "ok": board.ping() if board.configured else True,
        "detail": "configured" if board.configured else "not configured (status from the database)",
    }
    try:
        session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "detail": settings.db_url.split("://")[0]}
    except Exception as exc:
        checks["database"] = {"ok": False, "detail": exc.__class__.__name__}
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(settings.data_dir).free / 1e9
    checks["disk"] = {
        "ok": free_gb >= settings.min_disk_space_gb,
        "detail": f"{free_gb:.1f} GB free, {settings.min_disk_space_gb} GB required",
    }
    # Redis only speeds up status polling: without it searches still run.
    healthy = all(c["ok"] for name, c in checks.items() if name != "redis")
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"ok": healthy, "checks": checks}
