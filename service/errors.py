"""API errors and the exception handlers that turn every failure into ``{code, message}``.

* :class:`~mer.errors.MERError` (the library's, the queue's and the service's own
  subclasses below) -> the status :func:`http_status` finds for its code in
  :data:`HTTP_STATUS` (the one table of error statuses) and ``{code, message}``;
* :class:`~starlette.exceptions.HTTPException` -> its status, code derived from it;
* :class:`~fastapi.exceptions.RequestValidationError` -> 422 ``validation_error``;
* anything else -> 500 ``internal_error`` (logged with its traceback, never sent).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mer.errors import MERError
from mer.schemas import ErrorInfo

logger = logging.getLogger(__name__)


class JobNotFoundError(MERError):
    """No job record has this id (never created, deleted or expired)."""

    code = "job_not_found"


class JobNotFinishedError(MERError):
    """The job has no result (yet): it is not ``succeeded``."""

    code = "job_not_finished"


class RequestBodyError(MERError):
    """The request body is not the expected form (missing ``file`` field, bad multipart)."""

    code = "validation_error"


class NotReadyError(MERError):
    """A dependency of the service (job store, broker) is unreachable."""

    code = "not_ready"


class UploadTimeoutError(MERError):
    """The request body did not arrive within ``upload_timeout_s``."""

    code = "upload_timeout"


class NotAVideoError(MERError):
    """The upload is a still image (PNG, JPEG, ...), not a video."""

    code = "not_a_video"


class TooFewFramesError(MERError):
    """The video decodes to fewer frames than motion analysis needs (2)."""

    code = "too_few_frames"


class ServiceError(MERError):
    """A :class:`MERError` that also sets response headers (``WWW-Authenticate``,
    ``Retry-After``)."""

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        """``message`` for the body; ``headers`` added to the response."""
        super().__init__(message)
        self.headers = headers or {}


class MissingApiKeyError(ServiceError):
    """No API key in ``Authorization: Bearer`` or ``X-API-Key``."""

    code = "missing_api_key"


class InvalidApiKeyError(ServiceError):
    """The API key is not one of the configured keys."""

    code = "invalid_api_key"


class RevokedApiKeyError(ServiceError):
    """The API key is known but revoked."""

    code = "api_key_revoked"


class RateLimitedError(ServiceError):
    """The key sent more requests than its rate limit allows (``Retry-After`` set)."""

    code = "rate_limited"


class TooManyJobsError(ServiceError):
    """The key already has its maximum of queued + running jobs (``Retry-After`` set)."""

    code = "too_many_jobs"


class JobExpiredError(MERError):
    """The job existed but retention removed it with its upload and result."""

    code = "job_expired"


class UploadNotFoundError(MERError):
    """The job record exists but its stored upload does not (deleted, or on another host)."""

    code = "upload_not_found"


class InvalidRangeError(MERError):
    """A malformed ``Range`` header (not ``bytes=start-end[, ...]``)."""

    code = "invalid_range"


class RangeNotSatisfiableError(ServiceError):
    """A ``Range`` that starts past the end of the file (416 with ``Content-Range``)."""

    code = "range_not_satisfiable"


class IdempotencyKeyInUseError(ServiceError):
    """Another request with the same ``Idempotency-Key`` is still uploading."""

    code = "idempotency_key_in_use"


class InvalidIdempotencyKeyError(MERError):
    """The ``Idempotency-Key`` header is empty, too long or not printable ASCII."""

    code = "invalid_idempotency_key"


class InvalidOptionError(MERError):
    """A form field of the upload has a value it cannot take."""

    code = "invalid_option"


class RateLimiterUnavailableError(MERError):
    """The rate-limit storage (Redis) cannot be reached."""

    code = "rate_limiter_unavailable"


#: The HTTP status of each error code (the README's table), when the error is raised while
#: answering a request. Codes of jobs that fail later are stored, not answered.
HTTP_STATUS: dict[str, int] = {
    # mer.errors
    "internal_error": 500,
    "invalid_video": 422,
    "file_not_found": 422,
    "empty_upload": 422,
    "unsupported_codec": 415,
    "no_video_stream": 422,
    "truncated_video": 422,
    "video_limit_exceeded": 422,
    "file_too_large": 413,
    "video_too_long": 422,
    "resolution_too_large": 422,
    "resolution_too_small": 422,
    "too_many_frames": 422,
    "no_face_detected": 422,
    "invalid_neutral_reference": 422,
    "model_unavailable": 503,
    "model_integrity_error": 503,
    "job_cancelled": 409,
    "inference_unavailable": 503,
    # mer.evaluation.labels
    "invalid_labels": 422,
    "clip_not_found": 404,
    # workers.errors, workers.webhooks
    "store_unavailable": 503,
    "queue_unavailable": 503,
    "invalid_callback_url": 400,
    "callback_url_not_allowed": 400,
    # this module
    "job_not_found": 404,
    "job_not_finished": 409,
    "validation_error": 422,
    "not_ready": 503,
    "upload_timeout": 408,
    "not_a_video": 415,
    "too_few_frames": 422,
    "missing_api_key": 401,
    "invalid_api_key": 401,
    "api_key_revoked": 403,
    "rate_limited": 429,
    "too_many_jobs": 429,
    "job_expired": 410,
    "upload_not_found": 404,
    "invalid_range": 400,
    "range_not_satisfiable": 416,
    "idempotency_key_in_use": 409,
    "invalid_idempotency_key": 422,
    "invalid_option": 422,
    "rate_limiter_unavailable": 503,
}


def http_status(exc: MERError) -> int:
    """The status to answer ``exc`` with: its code's in :data:`HTTP_STATUS`; for a code not
    in the table, that of the nearest class in its MRO whose own code is; else 500."""
    if exc.code in HTTP_STATUS:
        return HTTP_STATUS[exc.code]
    for cls in type(exc).__mro__:
        code = cls.__dict__.get("code")
        if code in HTTP_STATUS:
            return HTTP_STATUS[code]
    return 500


#: ``responses=`` entries documenting error bodies in OpenAPI.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` mapping each status to the :class:`ErrorInfo` body."""
    return {
        status: {"model": ErrorInfo, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


def _count(request: Request, code: str) -> None:
    """Count an error response by ``code`` (``mer_errors_total``) if the app has metrics."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(code).inc()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    return JSONResponse(
        status_code=status,
        content=ErrorInfo(code=code, message=message).model_dump(),
        headers=headers,
    )


_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "file_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


async def mer_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """``MERError`` -> its status and ``{code, message}``."""
    assert isinstance(exc, MERError)
    status = http_status(exc)
    if status >= 500:
        logger.warning("%s %s -> %s: %s", request.method, request.url.path, exc.code, exc.message)
    _count(request, exc.code)
    return _error(status, exc.code, exc.message, headers=getattr(exc, "headers", None))


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """``HTTPException`` -> ``{code, message}`` (``detail`` may already be such a dict)."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail
    if isinstance(detail, dict) and "code" in detail and "message" in detail:
        code, message = str(detail["code"]), str(detail["message"])
    else:
        code = _HTTP_CODES.get(status, f"http_{status}")
        try:
            default = HTTPStatus(status).phrase
        except ValueError:
            default = "error"
        message = str(detail) if detail else default
    _count(request, code)
    return _error(status, code, message, headers=getattr(exc, "headers", None))


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """``RequestValidationError`` -> 422 ``validation_error`` with a readable message."""
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else err.get("msg", "invalid"))
    _count(request, "validation_error")
    return _error(422, "validation_error", "; ".join(parts) or "invalid request")


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything else -> 500 ``internal_error``; the traceback goes to the log only."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    _count(request, "internal_error")
    return _error(500, "internal_error", "internal server error")


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers above on ``app``."""
    app.add_exception_handler(MERError, mer_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
