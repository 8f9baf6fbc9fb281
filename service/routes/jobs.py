"""``/v1/jobs/{job_id}``: status and result, per-frame CSV, cancel, delete.

A job is visible only to the API key that submitted it: any other key gets the same 404
as for an unknown id. An id removed by retention answers 410 ``job_expired``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from mer.export import result_to_csv
from mer.schemas import AnalysisResult
from service.auth import Principal
from service.deps import JobStoreDep, PrincipalDep, SettingsDep
from service.errors import (
    JobExpiredError,
    JobNotFinishedError,
    JobNotFoundError,
    error_responses,
)
from service.models import JobStatus
from service.upload import remove_upload_dir
from workers.jobstore import ACTIVE_STATES, JobRecord, JobState, JobStore
from workers.webhooks import notify_job_end

router = APIRouter(prefix="/jobs", tags=["jobs"])


def _record_or_404(store: JobStore, job_id: str, principal: Principal) -> JobRecord:
    """The caller's job record; 404 ``job_not_found`` / 410 ``job_expired`` otherwise."""
    record = store.get(job_id)
    if record is not None and principal.authenticated and record.owner != principal.name:
        record = None  # someone else's job: indistinguishable from an unknown id
    if record is None:
        shown = job_id if len(job_id) <= 64 else job_id[:64] + "..."
        if store.is_expired(job_id):
            raise JobExpiredError(
                f"job {shown!r} has expired: its upload and result were deleted by retention"
            )
        raise JobNotFoundError(f"no job with id {shown!r}")
    return record


@router.get(
    "/{job_id}",
    name="get_job",
    response_model=JobStatus,
    responses=error_responses(401, 403, 404, 410, 429, 503),
    summary="Job state, progress and result",
)
def get_job(job_id: str, store: JobStoreDep, principal: PrincipalDep) -> JobStatus:
    """Return the job's state and progress; ``result`` once it succeeded, ``error``
    (``{code, message}``) once it failed or was cancelled. Unknown ids: 404
    ``job_not_found``; expired: 410 ``job_expired``."""
    record = _record_or_404(store, job_id, principal)
    result = None
    if record.state == JobState.SUCCEEDED:
        raw = store.get_result(job_id)
        if raw is not None:
            result = AnalysisResult.model_validate_json(raw)
    return JobStatus.from_record(record, result)


@router.get(
    "/{job_id}/result.csv",
    name="get_job_csv",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "One row per frame: frame, timestamp, success, confidence, "
            "apex_score, AU01 ... (OpenFace / py-feat column names).",
        },
        **error_responses(401, 403, 404, 409, 410, 429, 503),
    },
    summary="Per-frame results as CSV",
)
def get_job_csv(job_id: str, store: JobStoreDep, principal: PrincipalDep) -> Response:
    """The per-frame table of a succeeded job as CSV; 409 ``job_not_finished`` otherwise."""
    record = _record_or_404(store, job_id, principal)
    if record.state != JobState.SUCCEEDED:
        raise JobNotFinishedError(
            f"job {job_id} is {record.state.value}; its CSV exists once it has succeeded"
        )
    raw = store.get_result(job_id)
    if raw is None:
        raise JobNotFoundError(f"the result of job {job_id} is no longer stored")
    text = result_to_csv(AnalysisResult.model_validate_json(raw))
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{job_id}.csv"'},
    )


@router.delete(
    "/{job_id}",
    name="delete_job",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 410, 429, 503),
    summary="Cancel and delete a job",
)
def delete_job(
    job_id: str, store: JobStoreDep, settings: SettingsDep, principal: PrincipalDep
) -> Response:
    """Cancel the job if it is queued or running, delete its upload, result and record
    (no webhook is sent for a deleted job), and free its backlog slot.

    Answers 204 with no body; afterwards ``GET`` answers 404. A running analysis stops at
    its next cancellation check.
    """
    record = _record_or_404(store, job_id, principal)
    if record.state in ACTIVE_STATES:
        store.request_cancel(job_id)
    remove_upload_dir(settings, job_id)
    store.delete(job_id)
    store.release_slot(principal.name, job_id)  # its backlog slot is free at once
    return Response(status_code=204)


@router.post(
    "/{job_id}/cancel",
    name="cancel_job",
    status_code=202,
    response_model=JobStatus,
    responses=error_responses(401, 403, 404, 410, 429, 503),
    summary="Cancel a job (keep its record)",
)
def cancel_job(job_id: str, store: JobStoreDep, principal: PrincipalDep) -> JobStatus:
    """Ask a queued or running job to stop; the record stays (``DELETE`` removes it).

    A queued job is ``cancelled`` at once; a running one gets ``cancel_requested`` and
    becomes ``cancelled`` (error ``job_cancelled``) at its next cancellation check,
    within about a second. A finished job is left unchanged. Answers the job's status.
    The job's ``callback_url``, if any, is notified once it is ``cancelled``.
    """
    _record_or_404(store, job_id, principal)
    record = store.request_cancel(job_id, on_cancelled=lambda r: notify_job_end(store, r.id))
    if record is None:
        raise JobNotFoundError(f"no job with id {job_id!r}")
    return JobStatus.from_record(record, None)
