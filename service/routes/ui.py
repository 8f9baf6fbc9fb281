"""The browser front-end: an upload page (``GET /``) and a results page per job
(``GET /ui/jobs/{job_id}``), plain HTML + JS + CSS served from ``service/static``.

The pages hold no data: their scripts call the JSON API (``/v1/...``) with the API key
the user typed (kept in the tab's ``sessionStorage``, sent as ``X-API-Key``). The video
element cannot send that header, so with authentication on the page fetches
``/v1/jobs/{id}/video`` with the header and plays the downloaded blob
(``URL.createObjectURL``); with authentication off it points ``<video src>`` at the route
and the browser streams it with range requests. Plots are drawn with uPlot, vendored in
``service/static/vendor/uplot`` (no CDN: the pages work offline).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from service.deps import JobStoreDep, SettingsDep
from service.errors import JobNotFoundError, error_responses
from workers.jobstore import is_valid_job_id

#: Packaged static files (HTML pages, scripts, styles, vendored uPlot).
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: URL prefix the static files are served under.
STATIC_URL = "/ui/static"

#: Same-origin only: no inline script, no CDN; media and images may be blob: URLs (the
#: authenticated video download and the apex frame thumbnail).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["ui"])


class UiConfig(BaseModel):
    """What the pages need to know about the service."""

    auth_enabled: bool = Field(description="Whether the API wants an API key.")
    max_upload_bytes: int = Field(description="Largest accepted upload (bytes).")


@cache
def _page(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def _html(name: str) -> HTMLResponse:
    return HTMLResponse(_page(name), headers=_PAGE_HEADERS)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def upload_page() -> HTMLResponse:
    """The upload page: drop a video, watch the job's progress, open the result."""
    return _html("index.html")


@router.get(
    "/ui/jobs/{job_id}",
    response_class=HTMLResponse,
    responses=error_responses(404),
    include_in_schema=False,
)
def job_page(job_id: str, store: JobStoreDep) -> HTMLResponse:
    """The results page of one job (404 ``job_not_found`` for a malformed or unknown id;
    whether the caller may read the job is decided by the API the page calls)."""
    if not is_valid_job_id(job_id) or store.get(job_id) is None:
        raise JobNotFoundError(f"no job with id {job_id[:64]!r}")
    return _html("job.html")


@router.get("/ui/config", response_model=UiConfig, summary="Settings the web pages need")
def ui_config(settings: SettingsDep) -> UiConfig:
    """Whether an API key is needed and the upload size limit (no secrets)."""
    return UiConfig(auth_enabled=settings.auth_enabled, max_upload_bytes=settings.max_upload_bytes)


def mount_ui(app: FastAPI) -> None:
    """Add the pages and the static files to ``app``."""
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="ui-static")
