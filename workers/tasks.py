"""The analysis job: run :func:`mer.pipeline.analyze_video` and record what happened.

:func:`run_job` is shared by both runners (the embedded thread pool and the Celery task
:func:`analyze_job`), so the job record evolves the same way in both:

``queued -> running -> succeeded`` (result stored), ``failed`` (``{code, message}``: the
:class:`~mer.errors.MERError` code, or ``internal_error`` with a short message; the
traceback goes to the log only) or ``cancelled`` (the owner asked; the pipeline polls
``should_cancel``).

**At-least-once delivery, exactly-once outcome.** Celery redelivers a job whose worker
died (``acks_late`` + ``reject_on_worker_lost``; with Redis, after the visibility
timeout). Each start of a job is an *attempt*: the ``attempts`` counter, incremented with a
compare-and-set, is the attempt's lease token, and every later write of that attempt
(progress, heartbeat, outcome) is conditional on it. A delivery that finds the job
finished is a no-op; one that finds it ``running`` with a fresh heartbeat (another live
worker has it) is deferred (:class:`JobBusyError`, retried later), so a job never runs
twice at once and never gets two outcomes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import Protocol

from celery import Task
from celery.signals import worker_ready, worker_shutdown

from mer.errors import JobCancelledError, MERError
from mer.schemas import AnalysisResult, ErrorInfo
from mer.settings import Settings, get_settings
from workers.celery_app import ANALYZE_TASK_NAME, celery_app
from workers.errors import StoreUnavailableError
from workers.inference import get_backend
from workers.jobstore import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    JobProgress,
    JobRecord,
    JobState,
    JobStore,
    make_job_store,
    quota_owner,
    utcnow,
)
from workers.logs import bind
from workers.reaper import LeaseReaper
from workers.webhooks import notify_job_end

logger = logging.getLogger(__name__)

#: A job whose worker died this many times (redelivered by the broker) fails for good.
MAX_ATTEMPTS = 3
#: Minimum seconds between two progress writes for the same stage.
PROGRESS_INTERVAL_S = 0.5
#: Minimum seconds between two reads of the cancel flag.
CANCEL_POLL_INTERVAL_S = 0.25
#: A running attempt whose heartbeat is older than this many heartbeat periods is dead.
LEASE_PERIODS = 3.0


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


def worker_id() -> str:
    """``host:pid`` of this process (who runs an attempt)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Analyzer(Protocol):
    """The signature of :func:`mer.pipeline.analyze_video`."""

    def __call__(
        self,
        path: Path,
        *,
        settings: Settings | None = None,
        filename: str | None = None,
        progress: Callable[[str, float], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> AnalysisResult:
        """Analyse one video."""
        ...


def load_analyzer() -> Analyzer:
    """Import the science entry point lazily (the API can start without loading models)."""
    from mer.pipeline import analyze_video

    return analyze_video


class ProgressWriter:
    """Progress callback that writes ``{stage, percent}`` to the job record, throttled.

    Writes on every stage change and otherwise at most every ``interval_s`` seconds.
    Store errors are logged, never raised into the pipeline.
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        interval_s: float = PROGRESS_INTERVAL_S,
        attempt: int | None = None,
    ):
        """Report for ``job_id`` (attempt ``attempt``, if given) into ``store``."""
        self.store = store
        self.job_id = job_id
        self.interval_s = interval_s
        self.expect = {"attempts": attempt} if attempt is not None else None
        self._stage: str | None = None
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, stage: str, percent: float) -> None:
        """Record that the pipeline is at ``stage``, ``percent`` % overall."""
        now = time.monotonic()
        with self._lock:
            if stage == self._stage and now - self._last < self.interval_s:
                return
            self._stage, self._last = stage, now
        pct = min(100.0, max(0.0, float(percent)))
        try:
            self.store.update(
                self.job_id,
                only_if_state={JobState.RUNNING},
                expect=self.expect,
                progress=JobProgress(stage=str(stage), percent=pct),
                heartbeat_at=utcnow(),
            )
        except Exception:  # noqa: BLE001 - progress is best effort
            logger.warning("job %s: could not record progress", self.job_id, exc_info=True)


class CancelFlag:
    """``should_cancel`` callback: true once the owner cancelled or deleted the job.

    Reads the record at most every ``interval_s`` seconds; a store error reads as "not
    cancelled".
    """

    def __init__(self, store: JobStore, job_id: str, interval_s: float = CANCEL_POLL_INTERVAL_S):
        """Poll ``job_id`` in ``store``."""
        self.store = store
        self.job_id = job_id
        self.interval_s = interval_s
        self._last = float("-inf")
        self._cancelled = False

    def __call__(self) -> bool:
        """Whether the job should stop now."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        try:
            record = self.store.get(self.job_id)
        except Exception:  # noqa: BLE001
            logger.warning("job %s: could not read the cancel flag", self.job_id, exc_info=True)
            return False
        self._cancelled = (
            record is None or record.cancel_requested or record.state == JobState.CANCELLED
        )
        return self._cancelled


class Heartbeat:
    """Background thread that renews a running attempt's lease every ``interval_s``: the
    record's ``heartbeat_at`` and, while the attempt owns the job, its key's run slot."""

    def __init__(
        self, store: JobStore, job_id: str, attempt: int, interval_s: float, owner: str
    ) -> None:
        """Renew ``job_id``'s ``heartbeat_at`` while attempt ``attempt`` owns it."""
        self.store, self.job_id, self.attempt = store, job_id, attempt
        self.interval_s = interval_s
        self.owner = owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        with bind(job_id=self.job_id):
            while not self._stop.wait(self.interval_s):
                try:
                    if self.store.update(
                        self.job_id,
                        only_if_state={JobState.RUNNING},
                        expect={"attempts": self.attempt},
                        heartbeat_at=utcnow(),
                    ):
                        lease_s = LEASE_PERIODS * self.interval_s
                        self.store.renew_run_slot(self.owner, self.job_id, lease_s)
                except Exception:  # noqa: BLE001 - the next beat tries again
                    logger.warning("could not renew the job's heartbeat", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _finish(
    store: JobStore,
    job_id: str,
    attempt: int,
    state: JobState,
    error: ErrorInfo | None,
) -> bool:
    """Record attempt ``attempt``'s final ``state``; ``False`` if it no longer owns the job."""
    stage = {JobState.FAILED: "failed", JobState.CANCELLED: "cancelled"}.get(state, "done")
    record = store.get(job_id)
    percent = record.progress.percent if record is not None else 0.0
    done = store.update(
        job_id,
        only_if_state={JobState.RUNNING},
        expect={"attempts": attempt},
        state=state,
        error=error,
        progress=JobProgress(
            stage=stage, percent=100.0 if state == JobState.SUCCEEDED else percent
        ),
    )
    if done:
        store.record_outcome(state.value, error.code if error else None)
        notify_job_end(store, job_id)
    return done


def _heartbeat_age_s(record_heartbeat: object, updated: object) -> float:
    stamp = record_heartbeat or updated
    return (utcnow() - stamp).total_seconds()  # type: ignore[operator]


def run_job(
    job_id: str,
    path: str,
    filename: str,
    *,
    store: JobStore,
    settings: Settings,
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
    settings: Settings,
    analyzer: Analyzer | None,
    ignore_lease: bool,
    queue: str | None,
) -> JobState | None:
    job_id = record.id
    if record.state in TERMINAL_STATES:
        logger.info("job %s: already %s; duplicate delivery skipped", job_id, record.state.value)
        return None
    if record.cancel_requested:
        if store.update(
            job_id,
            only_if_state=ACTIVE_STATES,
            state=JobState.CANCELLED,
            error=ErrorInfo(code="job_cancelled", message="the job was cancelled"),
            progress=JobProgress(stage="cancelled", percent=record.progress.percent),
        ):
            store.record_outcome(JobState.CANCELLED.value, "job_cancelled")
            notify_job_end(store, job_id)
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
        if store.update(
            job_id,
            only_if_state=ACTIVE_STATES,
            expect={"attempts": record.attempts},
            state=JobState.FAILED,
            error=error,
            progress=JobProgress(stage="failed", percent=record.progress.percent),
        ):
            store.record_outcome(JobState.FAILED.value, error.code)
            notify_job_end(store, job_id)
        return JobState.FAILED
    owner = quota_owner(record)
    limit = settings.max_concurrent_jobs_per_key
    if not store.acquire_run_slot(owner, job_id, limit, lease_s):
        raise OwnerBusyError(
            job_id, OWNER_BUSY_RETRY_S, f"waits: its key runs {limit} job(s) already"
        )
    attempt = record.attempts + 1
    started = store.update(
        job_id,
        only_if_state=ACTIVE_STATES,
        expect={"attempts": record.attempts},
        state=JobState.RUNNING,
        attempts=attempt,
        worker=worker_id(),
        heartbeat_at=utcnow(),
        queue=queue,
        progress=JobProgress(stage="starting", percent=0.0),
    )
    if not started:
        logger.info("job %s: taken by another attempt meanwhile; skipped", job_id)
        return None
    try:
        return _run_attempt(record, attempt, owner, path, filename, store, settings, analyzer)
    finally:
        _release_run_slot(store, owner, job_id, attempt)


def _release_run_slot(store: JobStore, owner: str, job_id: str, attempt: int) -> None:
    """Give back the key's run slot unless a newer attempt (a takeover) holds it now."""
    try:
        current = store.get(job_id)
        if current is None or current.attempts == attempt:
            store.release_run_slot(owner, job_id)
    except Exception:  # noqa: BLE001 - the slot's lease runs out by itself
        logger.warning("job %s: could not release its run slot", job_id, exc_info=True)


def _run_attempt(
    record: JobRecord,
    attempt: int,
    owner: str,
    path: str,
    filename: str,
    store: JobStore,
    settings: Settings,
    analyzer: Analyzer | None,
) -> JobState | None:
    """Run attempt ``attempt`` (already recorded as ``running``) to its outcome."""
    job_id = record.id
    logger.info("job %s: started (attempt %d)", job_id, attempt)
    t0 = time.monotonic()
    should_cancel = CancelFlag(store, job_id)
    try:
        with Heartbeat(store, job_id, attempt, settings.heartbeat_s, owner):
            analyze = analyzer or partial(load_analyzer(), backend=get_backend(settings))
            result = analyze(
                Path(path),
                settings=settings,
                filename=filename,
                progress=ProgressWriter(store, job_id, attempt=attempt),
                should_cancel=should_cancel,
            )
        if should_cancel():
            raise JobCancelledError("the job was cancelled")
        store.set_result(job_id, result.model_dump_json())
        done = store.update(
            job_id,
            only_if_state={JobState.RUNNING},
            expect={"attempts": attempt},
            state=JobState.SUCCEEDED,
            error=None,
            progress=JobProgress(stage="done", percent=100.0),
        )
        if not done:
            current = store.get(job_id)
            if current is None or current.state != JobState.SUCCEEDED:
                store.delete_result(job_id)  # cancelled or deleted meanwhile: drop it
            logger.info(
                "job %s: attempt %d no longer owns the job; outcome dropped", job_id, attempt
            )
            return None
        store.record_outcome(JobState.SUCCEEDED.value, None, result.timings_ms)
        logger.info("job %s: succeeded in %.1f s", job_id, time.monotonic() - t0)
        notify_job_end(store, job_id)
        return JobState.SUCCEEDED
    except StoreUnavailableError:
        # not the video's fault: leave the attempt to be retried (Celery) or requeued
        logger.warning("job %s: the job store failed mid-job; the attempt is abandoned", job_id)
        raise
    except JobCancelledError as exc:
        logger.info("job %s: cancelled", job_id)
        error = ErrorInfo(code=exc.code, message=exc.message)
        _finish(store, job_id, attempt, JobState.CANCELLED, error)
        return JobState.CANCELLED
    except MERError as exc:
        if should_cancel():  # e.g. the upload was deleted under a cancelled job
            error = ErrorInfo(code="job_cancelled", message="the job was cancelled")
            _finish(store, job_id, attempt, JobState.CANCELLED, error)
            return JobState.CANCELLED
        logger.info("job %s: failed with %s: %s", job_id, exc.code, exc.message)
        error = ErrorInfo(code=exc.code, message=exc.message)
        _finish(store, job_id, attempt, JobState.FAILED, error)
        return JobState.FAILED
    except Exception as exc:
        logger.exception("job %s: internal error", job_id)
        message = f"the analysis failed unexpectedly ({exc.__class__.__name__})"
        error = ErrorInfo(code="internal_error", message=message)
        _finish(store, job_id, attempt, JobState.FAILED, error)
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
