"""``POST /v1/analyze``: upload a video, get a job id (202)."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from mer.aus.reference import NeutralSpan
from mer.errors import NeutralReferenceError
from service.deps import JobStoreDep, PrincipalDep, RateLimiterDep, RunnerDep, SettingsDep
from service.errors import (
    IdempotencyKeyInUseError,
    InvalidIdempotencyKeyError,
    InvalidOptionError,
    TooManyJobsError,
    error_responses,
)
from service.models import JobAccepted
from service.probe import inspect_upload
from service.quotas import SLOT_GRACE_MARGIN_S, TOO_MANY_JOBS_RETRY_S
from service.upload import receive_upload, remove_upload_dir, upload_dir_for
from workers.jobstore import JobRecord, JobStore, WebhookDelivery, new_job_id
from workers.logs import bind, request_id_var
from workers.webhooks import WebhookSettings, check_callback_url

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
                        },
                        "include_blendshapes": {
                            "type": "boolean",
                            "default": False,
                            "description": "Also report MediaPipe's 52 blendshapes of every "
                            "frame (frames[i].blendshapes in the JSON, 52 columns in the CSV); "
                            "off by default to keep results small.",
                        },
                        "neutral_start_s": {
                            "type": "number",
                            "minimum": 0,
                            "description": "With neutral_end_s: a stretch of the video "
                            "(seconds on the result's timestamp axis, both ends included) "
                            "where the person's face is neutral. AU scores and intervals are "
                            "then read against it instead of an estimated neutral (a face "
                            "whose rest looks like an expression, e.g. low brows, is then "
                            "no expression). A stretch with no face fails the job "
                            "(invalid_neutral_reference).",
                        },
                        "neutral_end_s": {
                            "type": "number",
                            "minimum": 0,
                            "description": "End of the neutral stretch (seconds); both "
                            "fields or neither.",
                        },
                        "callback_url": {
                            "type": "string",
                            "format": "uri",
                            "maxLength": 2048,
                            "description": "Optional http(s) URL the service POSTs the "
                            "job's outcome to when it ends (JSON: job_id, state, error, "
                            "result_url; signed with X-MER-Signature when the server has "
                            "MER_WEBHOOK_SECRET). Private, loopback and link-local "
                            "targets are refused (400 callback_url_not_allowed).",
                        },
                    },
                }
            }
        },
    }
}


_IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def _replay(
    store: JobStore, scope: str, job_id: str, settings: Any
) -> tuple[JobRecord | None, str | None]:
    """Claim the idempotency ``scope`` for ``job_id``.

    Returns ``(record, None)`` for a replay of a stored job, ``(None, None)`` when this
    request now owns the key. Raises :class:`IdempotencyKeyInUseError` while the first
    request with the key is still uploading.
    """
    for _ in range(2):
        bound = store.claim_idempotency(scope, job_id, settings.job_ttl_s)
        if bound is None:
            return None, None
        record = store.get(bound)
        if record is not None:
            return record, bound
        if upload_dir_for(settings, bound).exists() and not store.is_expired(bound):
            raise IdempotencyKeyInUseError(
                "a request with this Idempotency-Key is still being received; retry later",
                headers={"Retry-After": "2"},
            )
        store.release_idempotency(scope, bound)  # its job was deleted or expired: rebind
    raise IdempotencyKeyInUseError("the Idempotency-Key is contended; retry later")


def _flag(fields: dict[str, str], name: str) -> bool:
    """A boolean form field (``true/false``, ``1/0``, ``yes/no``; absent = false).

    Raises:
        InvalidOptionError: any other value (422 ``invalid_option``).
    """
    value = fields.get(name, "").strip().lower()
    if value in ("", "false", "0", "no", "off"):
        return False
    if value in ("true", "1", "yes", "on"):
        return True
    raise InvalidOptionError(f"{name} must be true or false, got {fields[name][:40]!r}")


def _neutral(fields: dict[str, str], duration_s: float) -> tuple[float, float] | None:
    """The form's neutral stretch ``(start_s, end_s)``, or None when neither field is given.

    Raises:
        InvalidOptionError: one field without the other, a value that is not a number, or a
            stretch :class:`mer.aus.reference.NeutralSpan` refuses (a negative start, an end
            before the start, a start after the video's end) (422 ``invalid_option``).
    """
    raw = {k: fields.get(k, "").strip() for k in ("neutral_start_s", "neutral_end_s")}
    if not any(raw.values()):
        return None
    if not all(raw.values()):
        raise InvalidOptionError("give both neutral_start_s and neutral_end_s, or neither")
    try:
        start, end = (float(raw[k]) for k in ("neutral_start_s", "neutral_end_s"))
    except ValueError as exc:
        raise InvalidOptionError(
            "neutral_start_s and neutral_end_s must be numbers (seconds), got "
            f"{raw['neutral_start_s'][:32]!r} and {raw['neutral_end_s'][:32]!r}"
        ) from exc
    try:
        NeutralSpan(start, end).check_within(duration_s)
    except NeutralReferenceError as exc:
        raise InvalidOptionError(exc.message) from exc
    return start, end


def _webhook_for(request: Request, job_id: str, fields: dict[str, str]) -> WebhookDelivery | None:
    """The job's webhook from the form's ``callback_url`` (checked), or ``None``."""
    url = fields.get("callback_url")
    if url is None or not url.strip():
        return None
    url = check_callback_url(url, allow_private=WebhookSettings().allow_private)
    result_url = str(request.url_for("get_job", job_id=job_id))
    return WebhookDelivery(url=url, result_url=result_url)


@router.post(
    "/analyze",
    status_code=202,
    response_model=JobAccepted,
    responses=error_responses(400, 401, 403, 408, 409, 413, 415, 422, 429, 503),
    openapi_extra=_UPLOAD_OPENAPI,
    summary="Upload a video for analysis",
)
async def analyze(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: JobStoreDep,
    runner: RunnerDep,
    principal: PrincipalDep,
    limiter: RateLimiterDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Optional client token (1-255 printable ASCII). Repeating a request "
            "with the same key (same API key) returns the first job instead of a new one; "
            "kept as long as the job.",
        ),
    ] = None,
) -> JobAccepted:
    """Stream the ``file`` field to disk, check it is a decodable video within the limits,
    and queue an analysis job.

    With ``callback_url``, the outcome is also POSTed there when the job ends (see
    :mod:`workers.webhooks`); with ``neutral_start_s`` / ``neutral_end_s``, the analysis
    reads the face against that stretch as the person's neutral. Rejected synchronously
    with ``{code, message}``: ``invalid_callback_url`` / ``callback_url_not_allowed``
    (400), ``file_too_large`` (413), ``empty_upload``, ``invalid_video``,
    ``truncated_video``, ``no_video_stream``, limits (422), ``unsupported_codec`` /
    ``not_a_video`` (415), ``upload_timeout`` (408), ``invalid_option`` (422: a bad
    ``include_blendshapes`` or neutral stretch), ``rate_limited`` / ``too_many_jobs`` (429).
    Poll ``status_url`` for the outcome.
    """
    limiter.check_submit(principal.name)
    job_id = new_job_id()
    scope: str | None = None
    if idempotency_key is not None:
        if not _IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key):
            raise InvalidIdempotencyKeyError(
                "Idempotency-Key must be 1-255 printable ASCII characters without spaces"
            )
        scope = f"{principal.name}\x00{idempotency_key}"
        record, bound = await run_in_threadpool(_replay, store, scope, job_id, settings)
        if record is not None and bound is not None:
            logger.info("job %s: replayed for its Idempotency-Key", bound)
            status_url = str(request.app.url_path_for("get_job", job_id=bound))
            response.headers["Location"] = status_url
            response.headers["Idempotent-Replayed"] = "true"
            return JobAccepted(job_id=bound, status_url=status_url, state=record.state)

    owner = principal.name
    upload_dir = upload_dir_for(settings, job_id)
    reserved = False
    try:
        reserved = await run_in_threadpool(
            store.reserve_slot,
            owner,
            job_id,
            settings.max_queued_jobs_per_key,
            settings.upload_timeout_s + SLOT_GRACE_MARGIN_S,
        )
        if not reserved:
            raise TooManyJobsError(
                f"this API key already has {settings.max_queued_jobs_per_key} queued or "
                "running jobs (its backlog is full); wait for some to finish",
                headers={"Retry-After": str(TOO_MANY_JOBS_RETRY_S)},
            )
        upload = await receive_upload(
            request,
            upload_dir,
            max_bytes=settings.max_upload_bytes,
            timeout_s=settings.upload_timeout_s,
        )
        webhook = await run_in_threadpool(_webhook_for, request, job_id, upload.fields)
        blendshapes = _flag(upload.fields, "include_blendshapes")
        probe = await run_in_threadpool(inspect_upload, upload.path, settings)
        neutral = _neutral(upload.fields, probe.duration_s)
        record = JobRecord(
            id=job_id,
            filename=upload.filename,
            upload_path=str(upload.path),
            owner=owner if principal.authenticated else None,
            request_id=request_id_var.get(),
            webhook=webhook,
            include_blendshapes=blendshapes,
            neutral_s=neutral,
        )
        await run_in_threadpool(store.create, record)
        try:
            await run_in_threadpool(runner.submit, job_id, str(upload.path), upload.filename)
        except BaseException:
            await run_in_threadpool(store.delete, job_id)
            raise
    except BaseException:
        remove_upload_dir(settings, job_id)
        try:
            if reserved:
                await run_in_threadpool(store.release_slot, owner, job_id)
            if scope is not None:
                await run_in_threadpool(store.release_idempotency, scope, job_id)
        except Exception:  # noqa: BLE001 - the store may be the reason we are here
            logger.warning("job %s: could not release its slot or key", job_id, exc_info=True)
        raise
    with bind(job_id=job_id):
        logger.info(
            "job %s: accepted %r (%d bytes)",
            job_id,
            upload.filename,
            upload.size,
            extra={"owner": owner, "bytes": upload.size},
        )
    status_url = str(request.app.url_path_for("get_job", job_id=job_id))
    response.headers["Location"] = status_url
    return JobAccepted(job_id=job_id, status_url=status_url, state=record.state)
