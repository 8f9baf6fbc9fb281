"""Job records shared by the API and the workers, and the stores that keep them.

* :mod:`~workers.jobstore.model`: the job record (:class:`JobRecord`), its states, ids
  and the encoding of updates;
* :mod:`~workers.jobstore.base`: the store interface (:class:`JobStore`: conditional
  updates, results, tombstones, idempotency keys, backlog and run slots, statistics);
* :mod:`~workers.jobstore.files`: :class:`FileJobStore` (default), one JSON file per job;
* :mod:`~workers.jobstore.redis_store`: :class:`RedisJobStore` (when
  :attr:`WorkerSettings.effective_redis_url` is set), one Redis hash per job;
* :mod:`~workers.jobstore.metrics`: job outcome counters and stage-time histograms.

:func:`make_job_store` picks the store the settings ask for.
"""

from __future__ import annotations

from pathlib import Path

from workers.jobstore.base import JobStore
from workers.jobstore.files import FileJobStore
from workers.jobstore.metrics import STAGE_BUCKETS_S, JobStats, MemoryJobMetrics, bucket_index
from workers.jobstore.model import (
    ACTIVE_STATES,
    ANONYMOUS_OWNER,
    TERMINAL_STATES,
    JobProgress,
    JobRecord,
    JobState,
    WebhookDelivery,
    cancelled_error,
    is_valid_job_id,
    new_job_id,
    quota_owner,
    scope_digest,
    utcnow,
)
from workers.jobstore.redis_store import RedisJobStore
from workers.settings import WorkerSettings


def make_job_store(settings: WorkerSettings) -> JobStore:
    """The store the settings ask for: Redis when ``effective_redis_url`` is set, else
    files under ``data_dir/jobs``."""
    url = settings.effective_redis_url
    if url:
        return RedisJobStore(
            url, ttl_s=settings.job_ttl_s, tombstone_ttl_s=settings.tombstone_ttl_s
        )
    return FileJobStore(
        Path(settings.data_dir) / "jobs",
        ttl_s=settings.job_ttl_s,
        tombstone_ttl_s=settings.tombstone_ttl_s,
    )


__all__ = [
    "ACTIVE_STATES",
    "ANONYMOUS_OWNER",
    "STAGE_BUCKETS_S",
    "TERMINAL_STATES",
    "FileJobStore",
    "JobProgress",
    "JobRecord",
    "JobState",
    "JobStats",
    "JobStore",
    "MemoryJobMetrics",
    "RedisJobStore",
    "WebhookDelivery",
    "bucket_index",
    "cancelled_error",
    "is_valid_job_id",
    "make_job_store",
    "new_job_id",
    "quota_owner",
    "scope_digest",
    "utcnow",
]
