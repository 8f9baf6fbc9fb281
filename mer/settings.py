"""The one settings class shared by the CLI, the API and the workers.

Every field is read from an environment variable with the ``MER_`` prefix (for example
``MER_BROKER_URL``, ``MER_MAX_UPLOAD_BYTES``) or from a ``.env`` file. Built on
pydantic-settings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Service-wide configuration (``MER_*`` environment variables).

    Units are given in each field's name or description: bytes, seconds, pixels, frames.
    """

    model_config = SettingsConfigDict(env_prefix="MER_", env_file=".env", extra="ignore")

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

    # --- input limits -------------------------------------------------------------------
    max_upload_bytes: int = Field(512 * 1024 * 1024, description="Largest upload (bytes).")
    max_duration_s: float = Field(600.0, description="Longest video (seconds).")
    max_width: int = Field(3840, description="Widest frame (pixels).")
    max_height: int = Field(2160, description="Tallest frame (pixels).")
    max_frames: int = Field(60_000, description="Most decoded frames.")
    min_face_fraction: float = Field(
        0.2, ge=0.0, le=1.0, description="Fraction of frames that must show a face."
    )

    # --- security, quotas, retention (service/, workers/) --------------------------------
    auth_enabled: bool = Field(
        True,
        description="Require an API key on /v1 routes. False only for a trusted local "
        "machine (the API logs a loud warning).",
    )
    api_keys: str = Field(
        "",
        description="Comma-separated 'name:sha256hex' entries (the SHA-256 of each key, "
        "never the key); make one with `python -m service.keys`.",
    )
    api_keys_file: Path | None = Field(
        None, description="File with one 'name:sha256hex' per line (# comments allowed)."
    )
    revoked_keys: str = Field(
        "", description="Comma-separated key names or hashes refused with 403."
    )
    rate_limit: str = Field(
        "600/minute",
        description="Per-key limit on all /v1 requests (limits syntax, ';'-separated).",
    )
    submit_rate_limit: str = Field(
        "60/minute", description="Per-key limit on POST /v1/analyze (limits syntax)."
    )
    upload_timeout_s: float = Field(
        600.0, gt=0, description="Seconds within which a whole upload must arrive (408)."
    )
    max_queued_jobs_per_key: int = Field(
        100,
        ge=1,
        description="Backlog of one key: queued + running jobs it may have; one more "
        "upload gets 429 too_many_jobs.",
    )
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
    sweep_interval_s: float = Field(
        300.0, gt=0, description="Seconds between retention sweeps in the API."
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

    # --- science ----------------------------------------------------------------------
    landmarker: Literal["mediapipe", "dlib"] = "mediapipe"
    model_dir: Path = Field(REPO_ROOT / "model_store", description="Shipped weights.")
    shared_data_dir: Path = Field(
        REPO_ROOT.parent / "shared" / "data",
        description="The real face media (London Set faces, test videos); never copied in.",
    )
    inference_backend: Literal["inprocess", "torchserve"] = "inprocess"
    emotion_min_score: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="The video's top-level emotion is reported only when the strongest "
        "interval's emotion probability reaches this; each interval keeps its own.",
    )
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
def get_settings() -> Settings:
    """Return the process-wide :class:`Settings` (cached; tests build their own)."""
    return Settings()
