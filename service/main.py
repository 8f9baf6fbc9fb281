"""The FastAPI application.

Run it with ``uvicorn service.main:app`` (settings from ``MER_*`` environment variables),
or build one with :func:`create_app` (tests pass their own :class:`Settings`). Without
``MER_BROKER_URL`` jobs run in-process (embedded runner, file job store under
``MER_DATA_DIR``); with it they go to Celery workers (``celery -A workers.celery_app
worker -Q mer``) and job records live in Redis.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool

from mer import __version__
from mer.settings import Settings, get_settings
from service.errors import register_error_handlers
from service.routes import analyze, health, jobs
from service.upload import sweep_orphans
from workers.jobstore import JobStore, make_job_store
from workers.runner import JobRunner, make_runner

logger = logging.getLogger(__name__)

_DESCRIPTION = """
Facial micro-expression analysis as a REST service.

1. `POST /v1/analyze` with a multipart `file` field: the video is checked at once and a
   job is queued (202, `job_id`).
2. Poll `GET /v1/jobs/{job_id}` until `state` is `succeeded` (the `result` is the
   AnalysisResult JSON), `failed` or `cancelled` (`error` holds `{code, message}`).
3. `GET /v1/jobs/{job_id}/result.csv` for the per-frame table;
   `DELETE /v1/jobs/{job_id}` to cancel and delete.

Every error body is `{"code": ..., "message": ...}` with a stable `code`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    job_store: JobStore | None = None,
    runner: JobRunner | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        settings: configuration; :func:`get_settings` (the environment) when omitted.
        job_store: overrides the store chosen from ``settings`` (Redis or files).
        runner: overrides the runner chosen from ``settings`` (Celery or embedded).

    Returns:
        The application; the store and runner are on ``app.state`` and are started and
        closed by its lifespan.
    """
    settings = settings or get_settings()
    store = job_store or make_job_store(settings)
    job_runner = runner or make_runner(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(sweep_orphans, settings, store)
            await run_in_threadpool(job_runner.start)
        except Exception:  # noqa: BLE001 - a down store must not stop the API starting
            logger.exception("startup housekeeping failed; continuing")
        yield
        job_runner.close()
        store.close()

    app = FastAPI(
        title="MER service",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.job_store = store
    app.state.runner = job_runner
    register_error_handlers(app)

    v1 = APIRouter(prefix="/v1")
    v1.include_router(analyze.router)
    v1.include_router(jobs.router)
    app.include_router(v1)
    app.include_router(health.router)
    return app


#: The application served by ``uvicorn service.main:app``.
app: FastAPI = create_app()
