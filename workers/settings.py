"""Settings of the queue side: job storage, Celery, leases, logs and the inference backends
(TorchServe client, in-process device), on top of the science library's.

Same ``MER_`` environment variables as :class:`mer.settings.Settings`, which this class
extends (a worker passes its settings to the pipeline as they are).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from mer.settings import Settings


class WorkerSettings(Settings):
    """Configuration of the workers (``MER_*`` environment variables)."""

    # --- storage and queue -------------------------------------------------------------
    data_dir: Path = Field(Path("var"), description="Uploads, results and job records.")
    broker_url: str | None = Field(
        None,
        description="Celery broker, e.g. redis://127.0.0.1:6379/0. Unset: the embedded "
        "in-process runner executes jobs (no Redis needed).",
    )
    redis_url: str | None = Field(
        None, description="Redis for job records and rate limits; defaults to broker_url."
    )
    celery_queue: str = Field(
        "mer",
        description="Celery queue the API publishes jobs to and workers consume by default; "
        "give worker pools (e.g. GPU hosts with in-process CUDA inference, CPU hosts with "
        "the TorchServe backend) their own queue and point each API at one.",
    )
    visibility_timeout_s: int = Field(
        7200, description="Redis visibility timeout; must exceed the longest job."
    )
    job_ttl_s: int = Field(7 * 24 * 3600, description="Job record and file retention.")
    embedded_workers: int = Field(1, ge=1, description="Threads of the embedded runner.")

    # --- jobs: concurrency, retention, leases, logs -------------------------------------
    max_concurrent_jobs_per_key: int = Field(
        4,
        ge=1,
        description="Jobs of one key that run at once; its other jobs wait in the queue.",
    )
    tombstone_ttl_s: int = Field(
        30 * 24 * 3600,
        ge=0,
        description="How long an expired job id answers 410 instead of 404 (seconds).",
    )
    heartbeat_s: float = Field(
        10.0, gt=0, description="Seconds between a running job's heartbeats (its lease)."
    )
    reaper_interval_s: float = Field(
        10.0,
        gt=0,
        description="Seconds between a worker's scans for running jobs whose lease (3 "
        "heartbeats) expired; such jobs are requeued for a live worker.",
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="API and worker log lines: JSON objects or plain text."
    )
    log_level: str = Field("INFO", description="Log level of the API and the workers.")

    # --- inference backends -------------------------------------------------------------
    torchserve_url: str = Field(
        "http://127.0.0.1:8080",
        description="TorchServe inference API (MER_INFERENCE_BACKEND=torchserve).",
    )
    torchserve_management_url: str | None = Field(
        None,
        description="TorchServe management API (readiness, model cards); default: "
        "torchserve_url with its port + 1 (8081).",
    )
    torchserve_timeout_s: float = Field(
        30.0, gt=0, description="Seconds one TorchServe request may take (read timeout)."
    )
    torchserve_retries: int = Field(
        3, ge=0, description="Retries of a failed TorchServe request (connection, 5xx)."
    )
    torchserve_backoff_s: float = Field(
        0.5, ge=0, description="First retry delay (seconds); doubles with every retry."
    )
    torchserve_concurrency: int = Field(
        32, ge=1, description="Requests in flight per worker (TorchServe batches them)."
    )
    inference_device: str = Field(
        "cpu",
        description="Device of the in-process backend: cpu, cuda or cuda:N (CUDA worker).",
    )
    torch_threads: int = Field(0, ge=0, description="torch.set_num_threads; 0 = default.")

    @property
    def effective_redis_url(self) -> str | None:
        """Redis URL for job records: ``redis_url``, else ``broker_url`` if it is Redis."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None


@lru_cache
def get_settings() -> WorkerSettings:
    """Return the worker process's :class:`WorkerSettings` (cached; tests build their own)."""
    return WorkerSettings()
