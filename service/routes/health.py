"""Liveness (``/healthz``), readiness (``/readyz``) and Prometheus metrics (``/metrics``)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mer.errors import MERError
from service.deps import JobStoreDep, RateLimiterDep, RunnerDep
from service.errors import NotReadyError, error_responses
from service.models import Liveness, Readiness

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness, summary="Liveness")
def healthz() -> Liveness:
    """The process is up and answering (checks nothing else)."""
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=error_responses(503),
    summary="Readiness",
)
def readyz(store: JobStoreDep, runner: RunnerDep, limiter: RateLimiterDep) -> Readiness:
    """200 when the job store, the runner (the broker, with Celery) and the rate limiter's
    storage are reachable; 503 ``not_ready`` with the reason otherwise."""
    checks = (
        (f"job store ({store.kind})", store.ping),
        (runner.kind, runner.check),
        (f"rate limiter ({limiter.kind})", limiter.check),
    )
    for what, check in checks:
        try:
            check()
        except MERError as exc:
            raise NotReadyError(f"{what} unavailable: {exc.message}") from exc
        except Exception as exc:  # noqa: BLE001
            raise NotReadyError(f"{what} unavailable ({exc.__class__.__name__})") from exc
    return Readiness(job_store=store.kind, runner=runner.kind, rate_limiter=limiter.kind)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, runner: RunnerDep) -> Response:
    """Prometheus text exposition of the app's metrics (see :mod:`service.observability`)."""
    app_metrics = request.app.state.metrics
    try:
        app_metrics.queue_depth.set(runner.queue_depth())
    except Exception:  # noqa: BLE001 - a down broker must not break /metrics
        logger.warning("could not read the queue depth", exc_info=True)
        app_metrics.queue_depth.set(float("nan"))
    return Response(generate_latest(app_metrics.registry), media_type=CONTENT_TYPE_LATEST)
