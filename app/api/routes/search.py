"""``POST /search`` and ``GET /sources``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from detectors.errors import InputError

from ...disk import DiskSpaceError
from ...schemas import SearchAccepted, SearchRequest, SourceInfo
from ...service import BrokerUnavailable, submit_search
from ...sources import SOURCES, get_source
from ..deps import BoardDep, SessionDep, SettingsDep, require_api_key

router = APIRouter(tags=["search"])


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}],
    )


@router.post(
    "/search",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SearchAccepted,
    dependencies=[Depends(require_api_key)],
)
def search(
    body: SearchRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    board: BoardDep,
    settings: SettingsDep,
):
    """Queue a search of the field at (ra, dec); the same search while one runs returns that one."""
    try:
        job, created = submit_search(
            body,
            session=session,
            settings=settings,
            board=board,
            dispatch=request.app.state.dispatch,
        )
    except (BrokerUnavailable, DiskSpaceError) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    except InputError as exc:
        field, _, message = str(exc).partition(": ")
        raise _unprocessable(field if message else "source", message or str(exc)) from None
    status_url = str(request.url_for("job_status", job_id=job.id))
    response.headers["Location"] = status_url
    return SearchAccepted(
        job_id=job.id, status_url=status_url, state=job.state, duplicate_of_running=not created
    )


@router.get("/sources", response_model=list[SourceInfo])
def sources():
    """The frame sources a search can name."""
    return [get_source(name).describe() for name in sorted(SOURCES)]
