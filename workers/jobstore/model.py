"""The job record and its vocabulary: ids, states, progress, webhook delivery.

A job record (:class:`JobRecord`) is the single source of truth about a job: the API
never asks Celery about task state (an unknown id would look ``PENDING`` there). Every
store (:mod:`workers.jobstore.base`) keeps these records; :func:`encode_changes` and
:func:`encode_expect` turn the keyword arguments of :meth:`JobStore.update` into the JSON
values the stores compare and write.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from mer.errors import JobCancelledError
from mer.schemas import ErrorInfo

_JOB_ID_RE = re.compile(r"[0-9a-f]{32}")


#: Quota owner of jobs submitted with authentication off (the API's anonymous principal).
ANONYMOUS_OWNER = "anonymous"


def is_valid_job_id(job_id: str) -> bool:
    """Whether ``job_id`` has the shape of an id made by :func:`new_job_id`."""
    return bool(_JOB_ID_RE.fullmatch(job_id))


def new_job_id() -> str:
    """Return a fresh random job id (32 lowercase hex digits)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class JobState(StrEnum):
    """Lifecycle of a job: ``queued -> running -> succeeded | failed | cancelled``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States a job never leaves.
TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
)
#: States in which a job may still be picked up or be running.
ACTIVE_STATES: frozenset[JobState] = frozenset({JobState.QUEUED, JobState.RUNNING})


class JobProgress(BaseModel):
    """Where a job is: the pipeline stage and the overall percentage (0..100)."""

    stage: str = Field("queued", description="Pipeline stage name, e.g. decode, au, done.")
    percent: float = Field(0.0, ge=0.0, le=100.0, description="Overall progress (%).")


class WebhookDelivery(BaseModel):
    """The job's ``callback_url`` and what became of its notification.

    Attributes:
        url: where the service POSTs the job's outcome (http or https).
        result_url: the job's absolute status URL, sent in the notification.
        status: ``pending`` (job not finished), ``delivering`` (being sent, with
            retries), ``delivered`` (the receiver answered 2xx) or ``failed`` (refused,
            or still failing when the retry time ran out).
        attempts: HTTP requests made so far.
        last_status_code: HTTP status of the last answer (``None``: no answer).
        last_error: why the last attempt failed (``None`` after a success).
        last_attempt_at, delivered_at: UTC timestamps.
    """

    url: str
    result_url: str | None = None
    status: Literal["pending", "delivering", "delivered", "failed"] = "pending"
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class JobRecord(BaseModel):
    """What the service knows about one job.

    Attributes:
        id: the job id (32 hex digits).
        state: see :class:`JobState`.
        progress: latest reported stage and percentage.
        filename: the client's file name, sanitised; metadata only, never a path.
        upload_path: where the upload was stored on the server.
        created_at, updated_at: UTC timestamps.
        error: ``{code, message}`` when the job failed or was cancelled.
        cancel_requested: set by the owner; the worker polls it.
        attempts: how many times a worker started the job (redeliveries count).
        owner: name of the API key that submitted the job (``None``: auth off).
        request_id: the ``X-Request-ID`` of the submitting request (for the logs).
        worker: who runs the current attempt (``host:pid``).
        heartbeat_at: last sign of life of the current attempt (its lease).
        queue: the Celery queue the current attempt was delivered from (the lease
            reaper publishes a takeover there); ``None`` in the embedded runner.
        webhook: the ``callback_url`` and its delivery (``None``: no callback asked).
        include_blendshapes: the client asked for the 52 blendshapes of every frame in
            the result (``include_blendshapes`` form field).
        neutral_s: ``(start, end)`` seconds where the person's face is neutral
            (``neutral_start_s`` / ``neutral_end_s`` form fields); None: estimated.
    """

    id: str
    state: JobState = JobState.QUEUED
    progress: JobProgress = Field(default_factory=JobProgress)
    filename: str
    upload_path: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    error: ErrorInfo | None = None
    cancel_requested: bool = False
    attempts: int = 0
    owner: str | None = None
    request_id: str | None = None
    worker: str | None = None
    heartbeat_at: datetime | None = None
    queue: str | None = None
    webhook: WebhookDelivery | None = None
    include_blendshapes: bool = False
    neutral_s: tuple[float, float] | None = None


def cancelled_error() -> ErrorInfo:
    """The ``{code, message}`` a cancelled job records (:class:`JobCancelledError`'s)."""
    exc = JobCancelledError()
    return ErrorInfo(code=exc.code, message=exc.message)


def quota_owner(record: JobRecord) -> str:
    """The name the job's backlog and run slots are kept under (its key, or anonymous)."""
    return record.owner or ANONYMOUS_OWNER


_UPDATABLE = frozenset(JobRecord.model_fields) - {"id", "created_at"}


def encode_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate update keys and convert values to JSON-ready data (``updated_at`` added)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update job record fields {sorted(unknown)}")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, StrEnum):
            value = value.value
        out[key] = value
    out.setdefault("updated_at", utcnow().isoformat())
    return out


def encode_expect(expect: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-ready values of an ``expect`` mapping (same encoding as the records)."""
    if not expect:
        return {}
    unknown = set(expect) - set(JobRecord.model_fields)
    if unknown:
        raise ValueError(f"cannot compare job record fields {sorted(unknown)}")
    out = encode_changes(dict(expect))
    if "updated_at" not in expect:
        out.pop("updated_at", None)
    return out


def scope_digest(scope: str) -> str:
    """SHA-256 hex of an idempotency scope or owner name (safe as a key or file name)."""
    return hashlib.sha256(scope.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RecordUpdate:
    """A validated conditional update of one record (what a store applies atomically).

    Attributes:
        only_if_state: the states the record must be in (``None``: any).
        expected: JSON-ready ``{field: value}`` the record must hold (:func:`encode_expect`).
        changes: JSON-ready ``{field: value}`` to write (:func:`encode_changes`).
    """

    only_if_state: Collection[JobState] | None
    expected: dict[str, Any]
    changes: dict[str, Any]
