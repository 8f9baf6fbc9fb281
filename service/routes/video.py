"""``GET /v1/jobs/{job_id}/video``: the uploaded video, streamed with HTTP range support.

The upload stays on disk while the job is kept (until retention or ``DELETE``), so the
results page can play it beside the plots. Same authentication and visibility as the
job's other routes (another key's job is a 404). Starlette's
:class:`~starlette.responses.FileResponse` serves RFC 9110 ranges (``Range: bytes=a-b``
-> 206 with ``Content-Range``; several ranges -> ``multipart/byteranges``) and
``If-Range``; the route checks the ``Range`` header first with FileResponse's own parser
so that a bad one gets the API's ``{code, message}`` body (400 ``invalid_range``, 416
``range_not_satisfiable``) instead of FileResponse's plain-text one.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import FileResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from service.deps import JobStoreDep, PrincipalDep, SettingsDep
from service.errors import (
    InvalidRangeError,
    RangeNotSatisfiableError,
    UploadNotFoundError,
    error_responses,
)
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


def _check_range(http_range: str, size: int) -> None:
    """Raise the API's errors for a ``Range`` header FileResponse would refuse."""
    try:
        FileResponse._parse_range_header(http_range, size)  # the parser that will serve it
    except MalformedRangeHeader as exc:
        raise InvalidRangeError(str(exc.content)) from None
    except RangeNotSatisfiable:
        raise RangeNotSatisfiableError(
            f"the range starts past the end of the video ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


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
        **error_responses(400, 401, 403, 404, 410, 416, 429, 503),
    },
    summary="The uploaded video (HTTP range requests)",
)
def get_job_video(
    job_id: str,
    store: JobStoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    range_: Annotated[
        str | None,
        Header(alias="range", description="Byte ranges, e.g. bytes=0-1023 (RFC 9110)."),
    ] = None,
    if_range: Annotated[
        str | None,
        Header(alias="if-range", description="Serve the range only if the ETag matches."),
    ] = None,
) -> FileResponse:
    """Stream the job's stored upload, in any state of the job.

    Unknown or another key's job: 404 ``job_not_found``; expired: 410 ``job_expired``;
    record kept but the file gone (deleted by hand, or stored on another host):
    404 ``upload_not_found``; malformed ``Range``: 400 ``invalid_range``; a range past
    the end: 416 ``range_not_satisfiable`` (``Content-Range: bytes */<size>``).
    """
    record = _record_or_404(store, job_id, principal)
    path = Path(record.upload_path)
    root = uploads_root(settings)
    if not path.resolve().is_relative_to(root) or not path.is_file():
        raise UploadNotFoundError(f"the upload of job {job_id} is no longer stored")
    if range_ is not None and if_range is None:
        _check_range(range_, path.stat().st_size)
    return FileResponse(
        path,
        media_type=media_type_for(path),
        filename=record.filename,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=300"},
    )
