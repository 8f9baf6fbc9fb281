"""The lease reaper: requeue running jobs whose worker died.

A running attempt renews its lease (the record's ``heartbeat_at``) every
``heartbeat_s`` seconds; after :data:`~workers.attempt.LEASE_PERIODS` periods without a
beat the attempt is dead (OOM kill, lost node, container restart). Celery on Redis would
hand the job's unacknowledged message to another worker only after the visibility
timeout (``MER_VISIBILITY_TIMEOUT_S``, 2 h by default, which must exceed the longest
job), so every live worker runs a :class:`LeaseReaper` thread that, every
``reaper_interval_s`` seconds:

1. takes a Redis lock (``mer:reaper``; redis-py :class:`~redis.lock.Lock`) so one worker
   scans at a time (without Redis, every reaper scans: the compare-and-set below keeps
   that safe);
2. finds ``running`` jobs whose lease expired;
3. moves each back to ``queued`` with a compare-and-set on its ``attempts`` counter (the
   dead attempt's lease token): of several reapers, one wins, and the dead attempt, were
   it only slow, can no longer record anything (its writes are conditional on that
   token);
4. publishes the job again; the worker that takes it starts attempt ``attempts + 1``.

The original message, redelivered after the visibility timeout, then finds the job
finished (a no-op) or running with a fresh lease (deferred until it ends). A job that
lost :data:`~workers.tasks.MAX_ATTEMPTS` workers fails with ``worker_lost``. Takeover
time after a death: at most the lease (3 x 10 s) plus one scan interval (10 s).

The same scan restarts webhooks whose sender died (:func:`~workers.webhooks.resume_stalled`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from workers.jobstore import JobProgress, JobRecord, JobState, JobStore, RedisJobStore, utcnow
from workers.logs import bind
from workers.settings import WorkerSettings
from workers.webhooks import WebhookSettings, resume_stalled

logger = logging.getLogger(__name__)

#: Redis key of the lock that lets one worker scan at a time.
REAPER_LOCK_KEY = "mer:reaper"


def lease_expired(record: JobRecord, lease_s: float) -> bool:
    """Whether a ``running`` record's last heartbeat is older than ``lease_s`` seconds."""
    if record.state != JobState.RUNNING:
        return False
    stamp = record.heartbeat_at or record.updated_at
    return (utcnow() - stamp).total_seconds() >= lease_s


def reap_expired_leases(
    store: JobStore, lease_s: float, requeue: Callable[[JobRecord], None]
) -> list[str]:
    """Move every running job whose lease expired back to ``queued`` and ``requeue`` it.

    Args:
        store: the job store.
        lease_s: seconds without a heartbeat after which an attempt is dead.
        requeue: publishes a job again (e.g. sends the Celery task); called once per job
            this call moved back to ``queued``.

    Returns:
        The ids of the requeued jobs.
    """
    requeued: list[str] = []
    hooks = WebhookSettings()
    for job_id in list(store.iter_ids()):
        record = store.get(job_id)
        if record is not None and record.webhook is not None:
            try:
                resume_stalled(store, record, hooks)
            except Exception:  # noqa: BLE001 - webhooks never stop the reaper
                logger.warning("job %s: could not resume its webhook", job_id, exc_info=True)
        if record is None or not lease_expired(record, lease_s):
            continue
        moved = store.update(
            job_id,
            only_if_state={JobState.RUNNING},
            expect={"attempts": record.attempts},
            state=JobState.QUEUED,
            progress=JobProgress(stage="queued", percent=0.0),
            worker=None,
        )
        if not moved:
            continue
        with bind(job_id=job_id, request_id=record.request_id):
            logger.warning(
                "job %s: attempt %d (%s) lost its lease; requeued for a live worker",
                job_id, record.attempts, record.worker,
            )  # fmt: skip
            try:
                requeue(record)
            except Exception:  # noqa: BLE001 - the broker's own redelivery remains
                logger.warning("job %s: could not publish it again", job_id, exc_info=True)
        requeued.append(job_id)
    return requeued


class LeaseReaper:
    """A daemon thread that runs :func:`reap_expired_leases` every ``interval_s``."""

    def __init__(
        self,
        store: JobStore,
        settings: WorkerSettings,
        requeue: Callable[[JobRecord], None],
        lease_s: float,
    ) -> None:
        """Scan ``store`` every ``settings.reaper_interval_s`` s (the first scan at once)."""
        self.store = store
        self.interval_s = settings.reaper_interval_s
        self.lease_s = lease_s
        self.requeue = requeue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mer-reaper", daemon=True)

    def scan_once(self) -> list[str]:
        """One scan, under the Redis lock when the store is Redis."""
        if not isinstance(self.store, RedisJobStore):
            return reap_expired_leases(self.store, self.lease_s, self.requeue)
        lock = self.store.client.lock(
            REAPER_LOCK_KEY, timeout=max(5.0, self.interval_s * 3), blocking=False
        )
        if not lock.acquire(blocking=False):
            return []
        try:
            return reap_expired_leases(self.store, self.lease_s, self.requeue)
        finally:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - it expired meanwhile: harmless
                logger.debug("reaper lock already gone", exc_info=True)

    def _loop(self) -> None:
        while True:
            try:
                self.scan_once()
            except Exception:  # noqa: BLE001 - next round tries again
                logger.warning("lease reaper scan failed", exc_info=True)
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> LeaseReaper:
        """Start the thread; returns ``self``."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current scan."""
        self._stop.set()
        self._thread.join(timeout=10)
