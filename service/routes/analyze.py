"""``POST /v1/analyze``: upload a video, get a job id (202)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from mer.video import probe_video
from service.deps import JobStoreDep, RunnerDep, SettingsDep
from service.errors import error_responses
from service.models import JobAccepted
from service.upload import receive_upload, remove_upload_dir, upload_dir_for
from workers.jobstore import JobRecord, JobState, new_job_id

logger = logging.getLogger(__name__)

router = APIRouter(tags=["analyze"])

#: The multipart body, documented by hand because the route streams it itself.
_UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The video (MP4, MOV, AVI, MKV, WebM, MPEG ...).",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/analyze",
    status_code=202,
    response_model=JobAccepted,
    responses=error_responses(413, 415, 422, 503),
    openapi_extra=_UPLOAD_OPENAPI,
    summary="Upload a video for analysis",
)
async def analyze(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: JobStoreDep,
    runner: RunnerDep,
) -> JobAccepted:
    """Stream the ``file`` field to disk, check it is a decodable video within the limits,
    and queue an analysis job.

    Rejected synchronously with ``{code, message}``: ``file_too_large`` (413),
    ``empty_upload``, ``invalid_video``, ``truncated_video``, ``no_video_stream``, limits
    (422), ``unsupported_codec`` (415). Poll ``status_url`` for the outcome.
    """
    job_id = new_job_id()
    upload_dir = upload_dir_for(settings, job_id)
    try:
        upload = await receive_upload(request, upload_dir, max_bytes=settings.max_upload_bytes)
        await run_in_threadpool(probe_video, upload.path, settings)
        record = JobRecord(id=job_id, filename=upload.filename, upload_path=str(upload.path))
        await run_in_threadpool(store.create, record)
    except BaseException:
        remove_upload_dir(settings, job_id)
        raise
    try:
        await run_in_threadpool(runner.submit, job_id, str(upload.path), upload.filename)
    except BaseException:
        await run_in_threadpool(store.delete, job_id)
        remove_upload_dir(settings, job_id)
        raise
    logger.info("job %s: accepted %r (%d bytes)", job_id, upload.filename, upload.size)
    status_url = request.app.url_path_for("get_job", job_id=job_id)
    response.headers["Location"] = str(status_url)
    return JobAccepted(job_id=job_id, status_url=str(status_url), state=JobState.QUEUED)
