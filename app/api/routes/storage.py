"""``GET /storage``: how full the data folder is and what cleanup would free."""

from __future__ import annotations

import datetime as dt
import shutil

from fastapi import APIRouter

from ...cleanup import plan_cleanup
from ..deps import SessionDep, SettingsDep

router = APIRouter(tags=["storage"])


def _folder_bytes(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


@router.get("/storage")
def storage(session: SessionDep, settings: SettingsDep):
    """Bytes used by raw frames, work arrays and results; free space; what cleanup may remove."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    disk = shutil.disk_usage(settings.data_dir)
    jobs = settings.data_dir / "jobs"
    used = {"raw": 0, "work": 0, "results": 0}
    if jobs.exists():
        for job_dir in jobs.iterdir():
            for kind in used:
                used[kind] += _folder_bytes(job_dir / kind)
    plan = plan_cleanup(
        session=session, settings=settings, now=dt.datetime.now(dt.UTC), free_bytes=disk.free
    )
    return {
        "data_dir": str(settings.data_dir),
        "used_bytes": used,
        "free_bytes": disk.free,
        "total_bytes": disk.total,
        "min_free_bytes": int(settings.min_disk_space_gb * 1e9),
        "retention_days": settings.data_retention_days,
        "eligible": [{"job_id": r.job_id, "bytes": r.bytes, "reason": r.reason} for r in plan],
        "eligible_bytes": sum(r.bytes for r in plan),
    }
