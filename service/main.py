"""The FastAPI application.

Run it with ``uvicorn service.main:app`` (settings from ``MER_*`` environment variables),
or build one with :func:`create_app` (tests pass their own :class:`ServiceSettings`). Without
``MER_BROKER_URL`` jobs run in-process (embedded runner, file job store under
``MER_DATA_DIR``); with it they go to Celery workers (``celery -A workers.celery_app
worker -Q mer``) and job records live in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from mer import __version__
from service.auth import KeyRing
from service.deps import authenticate
from service.errors import register_error_handlers
from service.observability import Metrics, ObservabilityMiddleware
from service.quotas import RateLimiter
from service.routes import analyze, health, jobs, video
from service.routes.aliases import alias_router
from service.routes.ui import mount_ui
from service.settings import ServiceSettings, get_settings
from service.upload import sweep_orphans
from workers.jobstore import JobStore, make_job_store
from workers.logs import configure_logging
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

The `/v1` paths are canonical. `POST /analyze`, `GET /jobs/{job_id}`,
`GET /jobs/{job_id}/result.csv`, `DELETE /jobs/{job_id}` and `POST /jobs/{job_id}/cancel`
are unversioned aliases of them (tag *aliases*, extension `x-canonical`): the same
operations with the same authentication; links in answers give the `/v1` path.

Authenticate with `Authorization: Bearer <API key>` or `X-API-Key: <API key>`. Per-key
rate limits and a concurrent-job quota answer 429 with `Retry-After`. Send an
`Idempotency-Key` header to make a submission safe to retry.
"""


def _warn_about_auth(settings: ServiceSettings, ring: KeyRing) -> None:
    """Log loudly when the API is open to anyone, or closed to everyone."""
    if not settings.auth_enabled:
        logger.warning(
            "!!! AUTHENTICATION IS DISABLED (MER_AUTH_ENABLED=false): anyone who can reach "
            "this port can submit and read jobs. Use this only on a trusted local machine. !!!"
        )
    elif len(ring) == 0:
        logger.error(
            "authentication is on but no API keys are configured (MER_API_KEYS / "
            "MER_API_KEYS_FILE): every /v1 request will be refused with 401"
        )


async def _retention_loop(settings: ServiceSettings, store: JobStore) -> None:
    """Run the retention sweep every ``sweep_interval_s`` seconds, forever."""
    while True:
        await asyncio.sleep(settings.sweep_interval_s)
        try:
            await run_in_threadpool(sweep_orphans, settings, store)
        except Exception:  # noqa: BLE001 - try again next time (store down, disk error)
            logger.warning("retention sweep failed", exc_info=True)


def create_app(
    settings: ServiceSettings | None = None,
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
        The application; the store, runner, key ring, rate limiter and metrics are on
        ``app.state``; the store and runner are started and closed by its lifespan, which
        also runs the retention sweep every ``sweep_interval_s``.

    Raises:
        ValueError: malformed API key entries or rate-limit strings (refuse to start).
    """
    settings = settings or get_settings()
    key_ring = KeyRing(settings)
    rate_limiter = RateLimiter(settings)
    store = job_store or make_job_store(settings)
    job_runner = runner or make_runner(settings, store)
    _warn_about_auth(settings, key_ring)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(sweep_orphans, settings, store)
            await run_in_threadpool(job_runner.start)
        except Exception:  # noqa: BLE001 - a down store must not stop the API starting
            logger.exception("startup housekeeping failed; continuing")
        sweeper = asyncio.create_task(_retention_loop(settings, store))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
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
    app.state.key_ring = key_ring
    app.state.rate_limiter = rate_limiter
    app.state.metrics = Metrics(store)
    register_error_handlers(app)
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)

    auth = [Depends(authenticate)]
    v1 = APIRouter(prefix="/v1", dependencies=auth)
    v1.include_router(analyze.router)
    v1.include_router(jobs.router)
    v1.include_router(video.router)
    app.include_router(v1)
    # POST /analyze, GET /jobs/{id}, ...: the same operations as /v1 (marked as aliases)
    app.include_router(alias_router([analyze.router, jobs.router], auth))
    app.include_router(health.router)
    mount_ui(app)
    return app


def build_default_app() -> FastAPI:
    """The app ``uvicorn service.main:app`` serves: settings and logging from the
    environment (``MER_*``)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


_default_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``service.main.app`` is built on first access (importing the module has no side
    effects: tests build their own apps with :func:`create_app`)."""
    global _default_app
    if name == "app":
        if _default_app is None:
            _default_app = build_default_app()
        return _default_app
    raise AttributeError(name)
