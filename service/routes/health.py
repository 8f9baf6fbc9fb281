"""Liveness (``/healthz``) and readiness (``/readyz``) probes."""

from __future__ import annotations

from fastapi import APIRouter

from mer.errors import MERError
from service.deps import JobStoreDep, RunnerDep
from service.errors import NotReadyError, error_responses
from service.models import Liveness, Readiness

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
def readyz(store: JobStoreDep, runner: RunnerDep) -> Readiness:
    """200 when the job store and the runner (the broker, with Celery) are reachable;
    503 ``not_ready`` with the reason otherwise."""
    for what, check in ((f"job store ({store.kind})", store.ping), (runner.kind, runner.check)):
        try:
            check()
        except MERError as exc:
            raise NotReadyError(f"{what} unavailable: {exc.message}") from exc
        except Exception as exc:  # noqa: BLE001
            raise NotReadyError(f"{what} unavailable ({exc.__class__.__name__})") from exc
    return Readiness(job_store=store.kind, runner=runner.kind)
