"""``/v1/jobs/{job_id}``: status and result, per-frame CSV, cancel + delete."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mer.export import result_to_csv
from mer.schemas import AnalysisResult
from service.deps import JobStoreDep, SettingsDep
from service.errors import JobNotFinishedError, JobNotFoundError, error_responses
from service.models import JobStatus
from service.upload import remove_upload_dir
from workers.jobstore import ACTIVE_STATES, JobRecord, JobState, JobStore

router = APIRouter(prefix="/jobs", tags=["jobs"])


def _record_or_404(store: JobStore, job_id: str) -> JobRecord:
    record = store.get(job_id)
    if record is None:
        shown = job_id if len(job_id) <= 64 else job_id[:64] + "..."
        raise JobNotFoundError(f"no job with id {shown!r}")
    return record


@router.get(
    "/{job_id}",
    name="get_job",
    response_model=JobStatus,
    responses=error_responses(404, 503),
    summary="Job state, progress and result",
)
def get_job(job_id: str, store: JobStoreDep) -> JobStatus:
    """Return the job's state and progress; ``result`` once it succeeded, ``error``
    (``{code, message}``) once it failed or was cancelled. Unknown ids: 404
    ``job_not_found``."""
    record = _record_or_404(store, job_id)
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
        **error_responses(404, 409),
    },
    summary="Per-frame results as CSV",
)
def get_job_csv(job_id: str, store: JobStoreDep) -> Response:
    """The per-frame table of a succeeded job as CSV; 409 ``job_not_finished`` otherwise."""
    record = _record_or_404(store, job_id)
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
    responses=error_responses(404, 503),
    summary="Cancel and delete a job",
)
def delete_job(job_id: str, store: JobStoreDep, settings: SettingsDep) -> Response:
    """Cancel the job if it is queued or running, delete its upload, result and record.

    Answers 204 with no body; afterwards ``GET`` answers 404. A running analysis stops at
    its next cancellation check.
    """
    record = _record_or_404(store, job_id)
    if record.state in ACTIVE_STATES:
        store.request_cancel(job_id)
    remove_upload_dir(settings, job_id)
    store.delete(job_id)
    return Response(status_code=204)
