"""The review pages: ``/`` (a search form and the jobs) and ``/jobs/{id}`` (a job's tracks).

Server-rendered HTML (Jinja2, templates in ``app/api/templates``) with a
little JavaScript (``app/api/static``), no build step; every asset is served
from the package, so the pages work with no network. The pages read what the
API reads and write through the API itself (``POST /search``, ``PATCH
/jobs/{id}/tracks/{track_id}``), sending ``X-API-Key`` when the server has a
key: the page asks for it once.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from detectors import __version__

from ... import pages
from ...db import crud
from ...db.models import ACTIVE_STATES
from ...pictures import read_layout
from ...schemas import SearchRequest
from ...sources import SOURCES, get_source
from ..deps import JobIdDep, SessionDep, SettingsDep

router = APIRouter(include_in_schema=False)

_HERE = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=_HERE / "templates")
_STATIC = _HERE / "static"
#: A static asset's name: the files in ``app/api/static``, nothing that walks a path.
_ASSET = re.compile(r"[a-z0-9-]{1,40}\.(?:css|js)")


def _render(request: Request, settings, name: str, context: dict, code: int = 200) -> HTMLResponse:
    context = {"key_required": bool(settings.api_key), "version": __version__, **context}
    return templates.TemplateResponse(request, name, context, status_code=code)


@router.get("/", response_class=HTMLResponse)
def front_page(request: Request, settings: SettingsDep):
    """The search form and the job list (kept up to date from ``GET /jobs``)."""
    sources = [get_source(name).describe() for name in sorted(SOURCES)]
    form = pages.search_form(SearchRequest.model_json_schema(), sources)
    return _render(request, settings, "front.html", {"form": form})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: JobIdDep, session: SessionDep, settings: SettingsDep):
    """A job's page: its progress while it runs; its tracks to review once done."""
    job = crud.get_job(session=session, job_id=job_id)
    if job is None:
        return _render(request, settings, "missing.html", {"job_id": job_id}, 404)
    files = sorted(job.files, key=lambda f: f.mjd or 0.0)
    context: dict = {
        "job": job,
        "active": job.state in ACTIVE_STATES,
        "entries": [],
        "data": {"frames": [], "tracks": {}},
    }
    if job.state == "done":
        folder = settings.job_dir(job_id) / "results" / "images"
        layout = read_layout(folder)
        tracks = crud.tracks_of(session=session, job_id=job_id)
        images = sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []
        entries = pages.track_entries(
            tracks,
            layout,
            frames=[f.name for f in files],
            image_url=f"/jobs/{job_id}/images/",
            images=images,
        )
        labels = pages.frame_labels([f.mjd for f in files if f.mjd is not None])
        context.update(
            entries=entries,
            data={
                "frames": labels,
                "tracks": {e.id: {"marks": e.marks, "captions": e.captions} for e in entries},
            },
            summary=pages.review_summary(tracks),
            shape=(layout or {}).get("shape"),
            known_in_field=_known_in_field(job.run),
            field="field.png" in images,
            overview="overview.png" in images,
            frame_labels=labels,
            panel=pages.PANEL_PX,
            reports=_reports(job.run, folder.parent),
        )
    return _render(request, settings, "job.html", context)


#: The reports a job may have, and what the page calls them.
_REPORTS = {"report.mpc": "MPC 80-column report", "report.psv": "ADES report (PSV)"}


def _reports(run: dict, results: Path) -> list[tuple[str, str, str | None]]:
    """``(file, title, why it was not written or None)`` of each report the job has or lacks."""
    why = run.get("reports") or {}
    return [
        (name, title, None if (results / name).is_file() else why.get(name) or "not written")
        for name, title in _REPORTS.items()
        if (results / name).is_file() or name in why
    ]


def _known_in_field(run: dict) -> int | None:
    """How many catalogued objects were predicted in the field (None: none were looked up)."""
    listed, source = run.get("known_in_field"), (run.get("known") or {}).get("source")
    return len(listed) if isinstance(listed, list) and source not in (None, "none") else None


@router.get("/static/{name}")
def static_file(name: str):
    """The pages' scripts and style sheet, from the package."""
    path = _STATIC / name
    if not _ASSET.fullmatch(name) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})
