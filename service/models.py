"""Response bodies of the API (request bodies are multipart uploads)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from mer.schemas import AnalysisResult, ErrorInfo
from workers.jobstore import JobProgress, JobRecord, JobState, WebhookDelivery


class JobAccepted(BaseModel):
    """Answer to an accepted upload (202): poll ``status_url``."""

    job_id: str
    status_url: str = Field(description="Path of the job resource, e.g. /v1/jobs/<id>.")
    state: JobState


class JobStatus(BaseModel):
    """A job's state, progress and, once finished, its result or error."""

    job_id: str
    state: JobState
    progress: JobProgress
    filename: str = Field(description="The uploaded file's name (sanitised).")
    created_at: datetime
    updated_at: datetime
    result: AnalysisResult | None = Field(None, description="Set when state is succeeded.")
    error: ErrorInfo | None = Field(None, description="Set when state is failed or cancelled.")
    cancel_requested: bool = Field(
        False, description="Cancellation was asked for; a running job stops at its next check."
    )
    webhook: WebhookDelivery | None = Field(
        None,
        description="The callback_url given at upload and its delivery: status (pending, "
        "delivering, delivered, failed), attempts, last HTTP status and error.",
    )

    @classmethod
    def from_record(cls, record: JobRecord, result: AnalysisResult | None) -> JobStatus:
        """Build the public view of a job record."""
        return cls(
            job_id=record.id,
            state=record.state,
            progress=record.progress,
            filename=record.filename,
            created_at=record.created_at,
            updated_at=record.updated_at,
            result=result,
            error=record.error,
            cancel_requested=record.cancel_requested,
            webhook=record.webhook,
        )


class Liveness(BaseModel):
    """``/healthz``: the process answers."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """``/readyz``: the job store and the runner (broker) are reachable."""

    status: Literal["ready"] = "ready"
    job_store: str = Field(description="file | redis")
    runner: str = Field(description="embedded | celery")
    rate_limiter: str = Field("memory", description="memory | redis")
