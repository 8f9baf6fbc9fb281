"""``GET /v1/jobs/{job_id}/video``: the uploaded video, streamed with HTTP range support.

The upload stays on disk while the job is kept (until retention or ``DELETE``), so the
results page can play it beside the plots. Same authentication and visibility as the
job's other routes (another key's job is a 404). Range requests (``Range: bytes=a-b``)
answer 206 with ``Content-Range``; an unsatisfiable range answers 416 (Starlette's
:class:`~starlette.responses.FileResponse` implements RFC 9110 ranges and ``If-Range``).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.deps import JobStoreDep, PrincipalDep, SettingsDep
from service.errors import UploadNotFoundError, error_responses
from service.routes.jobs import _record_or_404
from service.upload import uploads_root

router = APIRouter(prefix="/jobs", tags=["jobs"])

#: Media types of the stored suffixes that :mod:`mimetypes` may not know everywhere.
_MEDIA_TYPES = {".mkv": "video/x-matroska", ".webm": "video/webm", ".ts": "video/mp2t"}


def media_type_for(path: Path) -> str:
    """The ``Content-Type`` for a stored upload, from its (whitelisted) suffix."""
    suffix = path.suffix.lower()
    guessed = _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0]
    return guessed or "application/octet-stream"


@router.get(
    "/{job_id}/video",
    name="get_job_video",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"video/*": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The uploaded video (``Accept-Ranges: bytes``).",
        },
        206: {"description": "The requested byte range (``Content-Range``)."},
        416: {"description": "The requested range is not satisfiable."},
        **error_responses(401, 403, 404, 410, 429, 503),
    },
    summary="The uploaded video (HTTP range requests)",
)
def get_job_video(
    job_id: str, store: JobStoreDep, settings: SettingsDep, principal: PrincipalDep
) -> FileResponse:
    """Stream the job's stored upload, in any state of the job.

    Unknown or another key's job: 404 ``job_not_found``; expired: 410 ``job_expired``;
    record kept but the file gone (deleted by hand, or stored on another host):
    404 ``upload_not_found``.
    """
    record = _record_or_404(store, job_id, principal)
    path = Path(record.upload_path)
    root = uploads_root(settings)
    if not path.resolve().is_relative_to(root) or not path.is_file():
        raise UploadNotFoundError(f"the upload of job {job_id} is no longer stored")
    return FileResponse(
        path,
        media_type=media_type_for(path),
        filename=record.filename,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=300"},
    )
