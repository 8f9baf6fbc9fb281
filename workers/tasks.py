"""The analysis job: run :func:`mer.pipeline.analyze_video_compact`, record what happened.

:func:`run_job` is shared by both runners (the embedded thread pool and the Celery task
:func:`analyze_job`), so the job record evolves the same way in both:

``queued -> running -> succeeded`` (result stored), ``failed`` (``{code, message}``: the
:class:`~mer.errors.MERError` code, or ``internal_error`` with a short message; the
traceback goes to the log only) or ``cancelled`` (the owner asked; the pipeline polls
``should_cancel``).

**At-least-once delivery, exactly-once outcome.** Celery redelivers a job whose worker
died (``acks_late`` + ``reject_on_worker_lost``; with Redis, after the visibility
timeout). Each start of a job is an *attempt* (:class:`~workers.attempt.JobAttempt`): the
``attempts`` counter, incremented with a compare-and-set, is the attempt's lease token,
and every later write of that attempt (progress, heartbeat, outcome) is conditional on it.
A delivery that finds the job finished is a no-op; one that finds it ``running`` with a
fresh heartbeat (another live worker has it) is deferred (:class:`JobBusyError`, retried
later), so a job never runs twice at once and never gets two outcomes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from celery import Task
from celery.signals import worker_ready, worker_shutdown

from mer.errors import JobCancelledError, MERError
from mer.schemas import AnalysisResult, ErrorInfo
from mer.settings import Settings
from workers.attempt import (
    LEASE_PERIODS,
    CancelFlag,
    Heartbeat,
    JobAttempt,
    ProgressWriter,
    conclude_unstarted,
)
from workers.celery_app import ANALYZE_TASK_NAME, celery_app
from workers.errors import StoreUnavailableError
from workers.inference import get_backend
from workers.jobstore import (
    TERMINAL_STATES,
    JobRecord,
    JobState,
    JobStore,
    cancelled_error,
    make_job_store,
    quota_owner,
    utcnow,
)
from workers.logs import bind
from workers.reaper import LeaseReaper
from workers.settings import WorkerSettings, get_settings

if TYPE_CHECKING:  # the pipeline is imported lazily (load_analyzer)
    from mer.pipeline import CompactResult

logger = logging.getLogger(__name__)

#: A job whose worker died this many times (redelivered by the broker) fails for good.
MAX_ATTEMPTS = 3


class JobBusyError(Exception):
    """Another live attempt runs this job; try again in ``retry_in_s`` seconds."""

    def __init__(self, job_id: str, retry_in_s: float, why: str = "is running elsewhere") -> None:
        """Job ``job_id`` is leased for about ``retry_in_s`` more seconds."""
        super().__init__(f"job {job_id} {why}; retry in {retry_in_s:.1f} s")
        self.retry_in_s = retry_in_s


class OwnerBusyError(JobBusyError):
    """The job's key already runs ``max_concurrent_jobs_per_key`` jobs; the job waits."""


#: Seconds before a job whose key had no free run slot is offered again.
OWNER_BUSY_RETRY_S = 3.0


class Analyzer(Protocol):
    """The signature of :func:`mer.pipeline.analyze_video_compact` (or ``analyze_video``):
    either result's ``model_dump_json()`` is what the job stores."""

    def __call__(
        self,
        path: Path,
        *,
        settings: Settings | None = None,
        filename: str | None = None,
        progress: Callable[[str, float], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        config: Any = None,
    ) -> AnalysisResult | CompactResult:
        """Analyse one video (``config``: a :class:`mer.pipeline.AnalysisConfig` or None)."""
        ...


def load_analyzer() -> Analyzer:
    """Import the science entry point lazily (the API can start without loading models).

    The compact form: the stored JSON is built a chunk of frames at a time from the
    result's arrays, so a long video's worker never holds every frame's object.
    """
    from mer.pipeline import analyze_video_compact

    return analyze_video_compact


def _analysis_config(record: JobRecord) -> Any:
    """The pipeline parameters the job asked for: None (the defaults) unless it asked for
    the per-frame blendshapes or gave the person's neutral stretch."""
    if not record.include_blendshapes and record.neutral_s is None:
        return None
    from mer.aus.reference import NeutralSpan
    from mer.pipeline import AnalysisConfig

    neutral = NeutralSpan(*record.neutral_s) if record.neutral_s is not None else None
    return AnalysisConfig(include_blendshapes=record.include_blendshapes, neutral=neutral)


def _heartbeat_age_s(record_heartbeat: object, updated: object) -> float:
    stamp = record_heartbeat or updated
    return (utcnow() - stamp).total_seconds()  # type: ignore[operator]


def run_job(
    job_id: str,
    path: str,
    filename: str,
    *,
    store: JobStore,
    settings: WorkerSettings,
    analyzer: Analyzer | None = None,
    ignore_lease: bool = False,
    queue: str | None = None,
) -> JobState | None:
    """Run one job to its end and record the outcome in ``store``.

    Never raises for analysis failures: they become ``failed`` records. Does nothing when
    the record is gone (deleted) or already finished (a duplicate delivery).

    Args:
        job_id: the job record's id.
        path: the stored upload (a server path, never the client's name).
        filename: the client's sanitised file name (reported in the result).
        store: the job store.
        settings: passed to the pipeline; ``heartbeat_s`` sets the lease.
        analyzer: the analysis function; :func:`load_analyzer` when omitted.
        ignore_lease: take over a ``running`` job even if its heartbeat is fresh (the
            embedded runner after a restart: its previous process is gone).
        queue: the Celery queue the message came from (recorded for the lease reaper).

    Returns:
        The final state, or ``None`` when the job was skipped.

    Raises:
        JobBusyError: another live attempt holds the job (Celery retries later).
        StoreUnavailableError: the store is unreachable before the job could start.
    """
    record = store.get(job_id)
    if record is None:
        logger.info("job %s: no record (deleted or expired); skipped", job_id)
        return None
    with bind(job_id=job_id, request_id=record.request_id):
        return _run_job(record, path, filename, store, settings, analyzer, ignore_lease, queue)


def _run_job(
    record: JobRecord,
    path: str,
    filename: str,
    store: JobStore,
    settings: WorkerSettings,
    analyzer: Analyzer | None,
    ignore_lease: bool,
    queue: str | None,
) -> JobState | None:
    job_id = record.id
    if record.state in TERMINAL_STATES:
        logger.info("job %s: already %s; duplicate delivery skipped", job_id, record.state.value)
        return None
    if record.cancel_requested:
        conclude_unstarted(
            store, record, JobState.CANCELLED, cancelled_error(), expect_attempts=False
        )
        return JobState.CANCELLED
    lease_s = LEASE_PERIODS * settings.heartbeat_s
    if record.state == JobState.RUNNING and not ignore_lease:
        age = _heartbeat_age_s(record.heartbeat_at, record.updated_at)
        if age < lease_s:
            raise JobBusyError(job_id, max(0.5, lease_s - age))
        logger.warning(
            "job %s: attempt %d (%s) stopped renewing its lease %.1f s ago; taking over",
            job_id, record.attempts, record.worker, age,
        )  # fmt: skip
    if record.attempts >= MAX_ATTEMPTS:
        error = ErrorInfo(
            code="worker_lost",
            message=f"the worker stopped unexpectedly {record.attempts} times "
            "while analysing this video",
        )
        conclude_unstarted(store, record, JobState.FAILED, error, expect_attempts=True)
        return JobState.FAILED
    owner = quota_owner(record)
    limit = settings.max_concurrent_jobs_per_key
    if not store.acquire_run_slot(owner, job_id, limit, lease_s):
        raise OwnerBusyError(
            job_id, OWNER_BUSY_RETRY_S, f"waits: its key runs {limit} job(s) already"
        )
    attempt = JobAttempt.start(store, record, owner, queue)
    if attempt is None:
        logger.info("job %s: taken by another attempt meanwhile; skipped", job_id)
        return None
    try:
        config = _analysis_config(record)
        return _run_attempt(attempt, path, filename, settings, analyzer, config)
    finally:
        attempt.release_run_slot()


def _run_attempt(
    attempt: JobAttempt,
    path: str,
    filename: str,
    settings: WorkerSettings,
    analyzer: Analyzer | None,
    config: Any = None,
) -> JobState | None:
    """Run ``attempt`` (already recorded as ``running``) to its outcome."""
    job_id = attempt.job_id
    logger.info("job %s: started (attempt %d)", job_id, attempt.number)
    t0 = time.monotonic()
    should_cancel = CancelFlag(attempt)
    try:
        with Heartbeat(attempt, settings.heartbeat_s):
            analyze = analyzer or partial(load_analyzer(), backend=get_backend(settings))
            result = analyze(
                Path(path),
                settings=settings,
                filename=filename,
                progress=ProgressWriter(attempt),
                should_cancel=should_cancel,
                config=config,
            )
        if should_cancel():
            raise JobCancelledError()
        if not attempt.succeed(result):
            logger.info(
                "job %s: attempt %d no longer owns the job; outcome dropped",
                job_id,
                attempt.number,
            )
            return None
        logger.info("job %s: succeeded in %.1f s", job_id, time.monotonic() - t0)
        return JobState.SUCCEEDED
    except StoreUnavailableError:
        # not the video's fault: leave the attempt to be retried (Celery) or requeued
        logger.warning("job %s: the job store failed mid-job; the attempt is abandoned", job_id)
        raise
    except JobCancelledError as exc:
        logger.info("job %s: cancelled", job_id)
        attempt.conclude(JobState.CANCELLED, ErrorInfo(code=exc.code, message=exc.message))
        return JobState.CANCELLED
    except MERError as exc:
        if should_cancel():  # e.g. the upload was deleted under a cancelled job
            attempt.conclude(JobState.CANCELLED, cancelled_error())
            return JobState.CANCELLED
        logger.info("job %s: failed with %s: %s", job_id, exc.code, exc.message)
        attempt.conclude(JobState.FAILED, ErrorInfo(code=exc.code, message=exc.message))
        return JobState.FAILED
    except Exception as exc:
        logger.exception("job %s: internal error", job_id)
        message = f"the analysis failed unexpectedly ({exc.__class__.__name__})"
        attempt.conclude(JobState.FAILED, ErrorInfo(code="internal_error", message=message))
        return JobState.FAILED


@lru_cache(maxsize=1)
def _worker_store() -> JobStore:
    """The job store of this worker process (from the environment's settings)."""
    return make_job_store(get_settings())


#: Seconds before a job whose store was unreachable is tried again.
STORE_RETRY_S = 5.0


@celery_app.task(
    name=ANALYZE_TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None
)
def analyze_job(self: Task, job_id: str, path: str, filename: str) -> str | None:
    """Celery task: analyse the stored upload at ``path`` for job ``job_id``.

    Receives only JSON-serialisable arguments (a server path, never the upload). Returns
    the final state's name (ignored: no result backend). A job held by another live
    worker, or whose store is unreachable, is re-published with a delay (``retry``), so
    the message is never dropped.
    """
    queue = (self.request.delivery_info or {}).get("routing_key")
    try:
        state = run_job(
            job_id, path, filename, store=_worker_store(), settings=get_settings(), queue=queue
        )
    except JobBusyError as exc:
        logger.info("job %s: %s", job_id, exc)
        raise self.retry(countdown=exc.retry_in_s) from None
    except StoreUnavailableError as exc:
        logger.warning("job %s: %s; retrying in %.0f s", job_id, exc.message, STORE_RETRY_S)
        raise self.retry(countdown=STORE_RETRY_S) from None
    return None if state is None else state.value


_reaper: LeaseReaper | None = None


@worker_ready.connect
def _start_reaper(**_: object) -> None:
    """Every live worker runs the lease reaper (:mod:`workers.reaper`): a job whose
    worker died is requeued within the lease plus one scan interval, not after the
    broker's visibility timeout."""
    global _reaper
    settings = get_settings()

    def requeue(record: JobRecord) -> None:
        analyze_job.apply_async(
            args=[record.id, record.upload_path, record.filename],
            queue=record.queue or settings.celery_queue,
        )

    lease_s = LEASE_PERIODS * settings.heartbeat_s
    _reaper = LeaseReaper(_worker_store(), settings, requeue, lease_s).start()
    logger.info(
        "lease reaper started (lease %.0f s, scan every %.0f s)", lease_s,
        settings.reaper_interval_s,
    )  # fmt: skip


@worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    if _reaper is not None:
        _reaper.stop()
