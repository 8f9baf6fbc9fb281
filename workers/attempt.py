"""One attempt at a job: the lease token that guards every write, and how a job ends.

Each start of a job is an *attempt*: the record's ``attempts`` counter, incremented with a
compare-and-set (:meth:`JobAttempt.start`), is the attempt's lease token, and every later
write of that attempt (progress, heartbeat, outcome) is conditional on it and on the job
still ``running``. :class:`JobAttempt` owns that token and hands it to the callbacks the
pipeline calls (:class:`ProgressWriter`, :class:`CancelFlag`) and to the lease renewal
(:class:`Heartbeat`).

:func:`conclude` is the one way a job ends: a conditional update to the final state, then
(only if that update won) the outcome is counted and the webhook sent, so a job never gets
two outcomes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from mer.schemas import AnalysisResult, ErrorInfo
from workers.jobstore import (
    ACTIVE_STATES,
    JobProgress,
    JobRecord,
    JobState,
    JobStore,
    utcnow,
)
from workers.logs import bind
from workers.webhooks import notify_job_end

if TYPE_CHECKING:  # the pipeline is imported lazily (workers.tasks.load_analyzer)
    from mer.pipeline import CompactResult

logger = logging.getLogger(__name__)

#: Minimum seconds between two progress writes for the same stage.
PROGRESS_INTERVAL_S = 0.5
#: Minimum seconds between two reads of the cancel flag.
CANCEL_POLL_INTERVAL_S = 0.25
#: A running attempt whose heartbeat is older than this many heartbeat periods is dead.
LEASE_PERIODS = 3.0

#: The progress stage a job shows once it ended in each final state.
FINAL_STAGE: dict[JobState, str] = {
    JobState.SUCCEEDED: "done",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}


def worker_id() -> str:
    """``host:pid`` of this process (who runs an attempt)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def conclude(
    store: JobStore,
    job_id: str,
    state: JobState,
    error: ErrorInfo | None,
    *,
    only_if_state: Collection[JobState],
    expect: Mapping[str, Any] | None = None,
    percent: float,
    timings_ms: Mapping[str, float] | None = None,
) -> bool:
    """Record ``job_id``'s final ``state`` if the record still matches; then count it.

    Args:
        store: the job store.
        job_id: the job.
        state: a terminal state.
        error: ``{code, message}`` (``None`` for a success).
        only_if_state, expect: the conditions of :meth:`JobStore.update`.
        percent: the progress percentage to leave on the record (0..100).
        timings_ms: per-stage times of a success (milliseconds), for the statistics.

    Returns:
        ``True`` if this call ended the job (the outcome was counted and the webhook, if
        any, started); ``False`` if the record was gone or no longer matched.
    """
    ended = store.update(
        job_id,
        only_if_state=only_if_state,
        expect=expect,
        state=state,
        error=error,
        progress=JobProgress(stage=FINAL_STAGE[state], percent=percent),
    )
    if ended:
        store.record_outcome(state.value, error.code if error else None, timings_ms)
        notify_job_end(store, job_id)
    return ended


def conclude_unstarted(
    store: JobStore, record: JobRecord, state: JobState, error: ErrorInfo, *, expect_attempts: bool
) -> bool:
    """End a job that no attempt of this worker started (cancelled before it ran, or lost
    too many workers). With ``expect_attempts`` the record's ``attempts`` must not have
    moved since ``record`` was read."""
    expect = {"attempts": record.attempts} if expect_attempts else None
    return conclude(
        store,
        record.id,
        state,
        error,
        only_if_state=ACTIVE_STATES,
        expect=expect,
        percent=record.progress.percent,
    )


class JobAttempt:
    """Attempt ``number`` of a job, recorded as ``running``; every write is conditional on it.

    Attributes:
        store: the job store.
        job_id: the job.
        number: the lease token (the record's ``attempts`` after this attempt started).
        owner: the quota owner whose run slot this attempt holds.
    """

    def __init__(self, store: JobStore, job_id: str, number: int, owner: str) -> None:
        """An attempt already recorded as started (see :meth:`start`)."""
        self.store = store
        self.job_id = job_id
        self.number = number
        self.owner = owner

    @classmethod
    def start(
        cls, store: JobStore, record: JobRecord, owner: str, queue: str | None
    ) -> JobAttempt | None:
        """Record a new attempt of ``record``'s job as ``running`` (compare-and-set on
        ``attempts``); ``None`` if another attempt took the job meanwhile."""
        number = record.attempts + 1
        started = store.update(
            record.id,
            only_if_state=ACTIVE_STATES,
            expect={"attempts": record.attempts},
            state=JobState.RUNNING,
            attempts=number,
            worker=worker_id(),
            heartbeat_at=utcnow(),
            queue=queue,
            progress=JobProgress(stage="starting", percent=0.0),
        )
        return cls(store, record.id, number, owner) if started else None

    @property
    def expect(self) -> dict[str, int]:
        """The compare-and-set condition of this attempt's writes."""
        return {"attempts": self.number}

    def write(self, **changes: Any) -> bool:
        """Change the record while this attempt owns the running job (see
        :meth:`JobStore.update`); ``False`` if it no longer does."""
        return self.store.update(
            self.job_id, only_if_state={JobState.RUNNING}, expect=self.expect, **changes
        )

    def succeed(self, result: AnalysisResult | CompactResult) -> bool:
        """Store ``result`` and end the job ``succeeded``; ``False`` (result dropped) if the
        attempt no longer owns the job (cancelled, deleted or taken over meanwhile). A
        :class:`~mer.pipeline.CompactResult` is written into the store a chunk of frames
        at a time (:meth:`JobStore.write_result`), without the whole document in memory."""
        write_json = getattr(result, "write_json", None)  # a CompactResult (lazy import)
        if write_json is not None:  # streamed into the store, never one string
            self.store.write_result(self.job_id, write_json)
        else:
            self.store.set_result(self.job_id, result.model_dump_json())
        done = self.conclude(JobState.SUCCEEDED, None, timings_ms=result.timings_ms)
        if not done:
            current = self.store.get(self.job_id)
            if current is None or current.state != JobState.SUCCEEDED:
                self.store.delete_result(self.job_id)  # cancelled or deleted meanwhile
        return done

    def conclude(
        self,
        state: JobState,
        error: ErrorInfo | None,
        timings_ms: Mapping[str, float] | None = None,
    ) -> bool:
        """End the job in ``state`` (see :func:`conclude`); ``False`` if this attempt no
        longer owns it. A failure or cancellation keeps the progress percentage reached."""
        if state == JobState.SUCCEEDED:
            percent = 100.0
        else:
            record = self.store.get(self.job_id)
            percent = record.progress.percent if record is not None else 0.0
        return conclude(
            self.store,
            self.job_id,
            state,
            error,
            only_if_state={JobState.RUNNING},
            expect=self.expect,
            percent=percent,
            timings_ms=timings_ms,
        )

    def release_run_slot(self) -> None:
        """Give back the key's run slot unless a newer attempt (a takeover) holds it now."""
        try:
            current = self.store.get(self.job_id)
            if current is None or current.attempts == self.number:
                self.store.release_run_slot(self.owner, self.job_id)
        except Exception:  # noqa: BLE001 - the slot's lease runs out by itself
            logger.warning("job %s: could not release its run slot", self.job_id, exc_info=True)


class ProgressWriter:
    """Progress callback that writes ``{stage, percent}`` to the job record, throttled.

    Writes on every stage change and otherwise at most every ``interval_s`` seconds, only
    while ``attempt`` owns the job. Store errors are logged, never raised into the pipeline.
    """

    def __init__(self, attempt: JobAttempt, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        """Report ``attempt``'s progress."""
        self.attempt = attempt
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
            self.attempt.write(
                progress=JobProgress(stage=str(stage), percent=pct), heartbeat_at=utcnow()
            )
        except Exception:  # noqa: BLE001 - progress is best effort
            logger.warning("job %s: could not record progress", self.attempt.job_id, exc_info=True)


class CancelFlag:
    """``should_cancel`` callback: true once the owner cancelled or deleted the job.

    Reads the record at most every ``interval_s`` seconds; a store error reads as "not
    cancelled".
    """

    def __init__(self, attempt: JobAttempt, interval_s: float = CANCEL_POLL_INTERVAL_S) -> None:
        """Poll ``attempt``'s job."""
        self.attempt = attempt
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
            record = self.attempt.store.get(self.attempt.job_id)
        except Exception:  # noqa: BLE001
            logger.warning(
                "job %s: could not read the cancel flag", self.attempt.job_id, exc_info=True
            )
            return False
        self._cancelled = (
            record is None or record.cancel_requested or record.state == JobState.CANCELLED
        )
        return self._cancelled


class Heartbeat:
    """Background thread that renews a running attempt's lease every ``interval_s``: the
    record's ``heartbeat_at`` and, while the attempt owns the job, its key's run slot."""

    def __init__(self, attempt: JobAttempt, interval_s: float) -> None:
        """Renew ``attempt``'s lease every ``interval_s`` seconds while it owns the job."""
        self.attempt = attempt
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{attempt.job_id}", daemon=True
        )

    def _run(self) -> None:
        attempt = self.attempt
        with bind(job_id=attempt.job_id):
            while not self._stop.wait(self.interval_s):
                try:
                    if attempt.write(heartbeat_at=utcnow()):
                        lease_s = LEASE_PERIODS * self.interval_s
                        attempt.store.renew_run_slot(attempt.owner, attempt.job_id, lease_s)
                except Exception:  # noqa: BLE001 - the next beat tries again
                    logger.warning("could not renew the job's heartbeat", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
