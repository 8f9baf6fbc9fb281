"""The analysis job: run :func:`mer.pipeline.analyze_video` and record what happened.

:func:`run_job` is shared by both runners (the embedded thread pool and the Celery task
:func:`analyze_job`), so the job record evolves the same way in both:

``queued -> running -> succeeded`` (result stored), ``failed`` (``{code, message}``: the
:class:`~mer.errors.MERError` code, or ``internal_error`` with a short message; the
traceback goes to the log only) or ``cancelled`` (the owner asked; the pipeline polls
``should_cancel``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from mer.errors import JobCancelledError, MERError
from mer.schemas import AnalysisResult, ErrorInfo
from mer.settings import Settings, get_settings
from workers.celery_app import ANALYZE_TASK_NAME, celery_app
from workers.jobstore import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    JobProgress,
    JobState,
    JobStore,
    make_job_store,
)

logger = logging.getLogger(__name__)

#: A job whose worker died this many times (redelivered by the broker) fails for good.
MAX_ATTEMPTS = 3
#: Minimum seconds between two progress writes for the same stage.
PROGRESS_INTERVAL_S = 0.5
#: Minimum seconds between two reads of the cancel flag.
CANCEL_POLL_INTERVAL_S = 0.25


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

    def __init__(self, store: JobStore, job_id: str, interval_s: float = PROGRESS_INTERVAL_S):
        """Report for ``job_id`` into ``store``."""
        self.store = store
        self.job_id = job_id
        self.interval_s = interval_s
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
                progress=JobProgress(stage=str(stage), percent=pct),
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


def _finish(store: JobStore, job_id: str, state: JobState, error: ErrorInfo | None) -> None:
    stage = {JobState.FAILED: "failed", JobState.CANCELLED: "cancelled"}.get(state, "done")
    record = store.get(job_id)
    percent = record.progress.percent if record is not None else 0.0
    store.update(
        job_id,
        only_if_state={JobState.RUNNING},
        state=state,
        error=error,
        progress=JobProgress(
            stage=stage, percent=100.0 if state == JobState.SUCCEEDED else percent
        ),
    )


def run_job(
    job_id: str,
    path: str,
    filename: str,
    *,
    store: JobStore,
    settings: Settings,
    analyzer: Analyzer | None = None,
) -> JobState | None:
    """Run one job to its end and record the outcome in ``store``.

    Never raises for analysis failures: they become ``failed`` records. Does nothing when
    the record is gone (deleted) or already finished (a duplicate delivery).

    Args:
        job_id: the job record's id.
        path: the stored upload (a server path, never the client's name).
        filename: the client's sanitised file name (reported in the result).
        store: the job store.
        settings: passed to the pipeline.
        analyzer: the analysis function; :func:`load_analyzer` when omitted.

    Returns:
        The final state, or ``None`` when the job was skipped.
    """
    record = store.get(job_id)
    if record is None:
        logger.info("job %s: no record (deleted or expired); skipped", job_id)
        return None
    if record.state in TERMINAL_STATES:
        logger.info("job %s: already %s; skipped", job_id, record.state.value)
        return None
    if record.cancel_requested:
        store.update(
            job_id,
            only_if_state=ACTIVE_STATES,
            state=JobState.CANCELLED,
            error=ErrorInfo(code="job_cancelled", message="the job was cancelled"),
            progress=JobProgress(stage="cancelled", percent=record.progress.percent),
        )
        return JobState.CANCELLED
    if record.attempts >= MAX_ATTEMPTS:
        store.update(
            job_id,
            only_if_state=ACTIVE_STATES,
            state=JobState.FAILED,
            error=ErrorInfo(
                code="worker_lost",
                message=f"the worker stopped unexpectedly {record.attempts} times "
                "while analysing this video",
            ),
            progress=JobProgress(stage="failed", percent=record.progress.percent),
        )
        return JobState.FAILED
    started = store.update(
        job_id,
        only_if_state=ACTIVE_STATES,
        state=JobState.RUNNING,
        attempts=record.attempts + 1,
        progress=JobProgress(stage="starting", percent=0.0),
    )
    if not started:
        return None

    logger.info("job %s: started (attempt %d)", job_id, record.attempts + 1)
    t0 = time.monotonic()
    should_cancel = CancelFlag(store, job_id)
    try:
        analyze = analyzer or load_analyzer()
        result = analyze(
            Path(path),
            settings=settings,
            filename=filename,
            progress=ProgressWriter(store, job_id),
            should_cancel=should_cancel,
        )
        if should_cancel():
            raise JobCancelledError("the job was cancelled")
        store.set_result(job_id, result.model_dump_json())
        done = store.update(
            job_id,
            only_if_state={JobState.RUNNING},
            state=JobState.SUCCEEDED,
            error=None,
            progress=JobProgress(stage="done", percent=100.0),
        )
        if not done:  # cancelled or deleted meanwhile: drop the orphan result
            store.delete_result(job_id)
            return None
        logger.info("job %s: succeeded in %.1f s", job_id, time.monotonic() - t0)
        return JobState.SUCCEEDED
    except JobCancelledError as exc:
        logger.info("job %s: cancelled", job_id)
        _finish(store, job_id, JobState.CANCELLED, ErrorInfo(code=exc.code, message=exc.message))
        return JobState.CANCELLED
    except MERError as exc:
        if should_cancel():  # e.g. the upload was deleted under a cancelled job
            _finish(
                store,
                job_id,
                JobState.CANCELLED,
                ErrorInfo(code="job_cancelled", message="the job was cancelled"),
            )
            return JobState.CANCELLED
        logger.info("job %s: failed with %s: %s", job_id, exc.code, exc.message)
        _finish(store, job_id, JobState.FAILED, ErrorInfo(code=exc.code, message=exc.message))
        return JobState.FAILED
    except Exception as exc:
        logger.exception("job %s: internal error", job_id)
        message = f"the analysis failed unexpectedly ({exc.__class__.__name__})"
        _finish(store, job_id, JobState.FAILED, ErrorInfo(code="internal_error", message=message))
        return JobState.FAILED


@lru_cache(maxsize=1)
def _worker_store() -> JobStore:
    """The job store of this worker process (from the environment's settings)."""
    return make_job_store(get_settings())


@celery_app.task(name=ANALYZE_TASK_NAME, acks_late=True, reject_on_worker_lost=True)
def analyze_job(job_id: str, path: str, filename: str) -> str | None:
    """Celery task: analyse the stored upload at ``path`` for job ``job_id``.

    Receives only JSON-serialisable arguments (a server path, never the upload). Returns
    the final state's name (ignored: no result backend).
    """
    state = run_job(job_id, path, filename, store=_worker_store(), settings=get_settings())
    return None if state is None else state.value
