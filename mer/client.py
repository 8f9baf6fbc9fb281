"""Python client of the REST service (httpx): submit videos, poll jobs, fetch results.

Example::

    from mer.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as client:
        job = client.submit("samples/single_face.mp4")      # {"job_id", "status_url", ...}
        done = client.wait(job["job_id"])                    # polls until finished
        result = client.result(job["job_id"])                # mer.schemas.AnalysisResult
        csv_text = client.result_csv(job["job_id"])          # per-frame CSV (OpenFace names)
        client.delete(job["job_id"])

It speaks the canonical ``/v1`` routes. Every error answer of the service becomes a
:class:`ServiceError` carrying its ``{code, message}`` and HTTP status; a job that ends
``failed`` or ``cancelled`` raises :class:`JobFailedError` from :meth:`Client.wait` with
the job's own ``{code, message}``. The client imports nothing of the service (only
:mod:`mer.schemas` for the result model).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from mer.schemas import AnalysisResult

#: Job states after which a job never changes.
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
#: ``(bytes sent so far, total bytes)`` during an upload.
UploadCallback = Callable[[int, int], None]
#: The job's status (``GET /v1/jobs/{id}`` body) after each poll.
PollCallback = Callable[[dict[str, Any]], None]


class ServiceError(Exception):
    """An error answer of the service, or no answer at all.

    Attributes:
        code: the service's stable error code (``invalid_api_key``, ``invalid_video``,
            ``job_not_found`` ...); ``connection_error`` when the service could not be
            reached, ``http_<status>`` when an answer carried no ``{code, message}``.
        message: the service's message.
        status_code: the HTTP status (0 without an answer).
        retry_after_s: the answer's ``Retry-After`` in seconds (429, 503), else None.
    """

    def __init__(
        self, code: str, message: str, status_code: int = 0, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class JobFailedError(ServiceError):
    """The job ended ``failed`` or ``cancelled``; ``code``/``message`` are the job's
    ``error`` (``no_face_detected``, ``job_cancelled`` ...) and ``job`` its last status."""

    def __init__(self, job: dict[str, Any]) -> None:
        error = job.get("error") or {}
        super().__init__(
            error.get("code", job.get("state", "failed")),
            error.get("message", f"job {job.get('job_id')} ended {job.get('state')}"),
        )
        self.job = job


class WaitTimeoutError(ServiceError):
    """:meth:`Client.wait` gave up before the job finished (code ``wait_timeout``)."""


class _CountingReader:
    """A binary file whose ``read`` reports progress (httpx streams multipart files by
    ``read``; ``seek``/``tell``/``fileno`` let it find the length)."""

    def __init__(self, fh: IO[bytes], total: int, callback: UploadCallback) -> None:
        self._fh, self._total, self._callback, self._sent = fh, total, callback, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        self._sent += len(chunk)
        self._callback(self._sent, self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        pos = self._fh.seek(offset, whence)
        if pos == 0:
            self._sent = 0
        return pos

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()


class Client:
    """A connection to one service.

    Args:
        url: the service's base URL, e.g. ``http://127.0.0.1:8000``.
        api_key: sent as ``Authorization: Bearer <key>``; ``None`` for a service with
            authentication off.
        timeout_s: per request (connect, read, write) in seconds.
        transport: an httpx transport (tests: ``httpx.ASGITransport``); default: HTTP
            with 2 connection retries.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers=headers,
            timeout=timeout_s,
            transport=transport or httpx.HTTPTransport(retries=2),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceError(
                "connection_error", f"{self._http.base_url}: {exc.__class__.__name__}: {exc}"
            ) from exc
        if response.is_success:
            return response
        try:
            body = response.json()
            code, message = str(body["code"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            code = f"http_{response.status_code}"
            message = response.text[:500] or response.reason_phrase
        try:
            retry_after: float | None = float(response.headers["Retry-After"])
        except (KeyError, ValueError):
            retry_after = None
        raise ServiceError(code, message, response.status_code, retry_after)

    def submit(
        self,
        video: str | os.PathLike[str],
        *,
        filename: str | None = None,
        idempotency_key: str | None = None,
        on_upload: UploadCallback | None = None,
        include_blendshapes: bool = False,
        neutral_s: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        """Upload a video (``POST /v1/analyze``) and queue its analysis.

        Args:
            video: the file (streamed, never read whole into memory).
            filename: the name the service records (default the file's name).
            idempotency_key: sent as ``Idempotency-Key`` (a retry returns the first job).
            on_upload: called with ``(bytes sent, total bytes)`` while uploading.
            include_blendshapes: also report the 52 blendshapes of every frame.
            neutral_s: ``(start, end)`` seconds where the person's face is neutral, read
                against instead of an estimated neutral (``neutral_start_s`` /
                ``neutral_end_s``); None: estimated.

        Returns:
            ``{"job_id", "status_url", "state"}`` (the 202 body).

        Raises:
            ServiceError: the upload was refused (``invalid_video``, ``file_too_large``,
                ``too_many_jobs`` ...) or the service is unreachable.
            OSError: the file cannot be read.
        """
        path = Path(video)
        total = path.stat().st_size
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        data: dict[str, str] = {}
        if include_blendshapes:
            data["include_blendshapes"] = "true"
        if neutral_s is not None:
            data["neutral_start_s"], data["neutral_end_s"] = (repr(float(x)) for x in neutral_s)
        with path.open("rb") as fh:
            body: Any = _CountingReader(fh, total, on_upload) if on_upload else fh
            response = self._request(
                "POST",
                "/v1/analyze",
                files={"file": (filename or path.name, body, "application/octet-stream")},
                data=data,
                headers=headers,
            )
        return response.json()

    def job(self, job_id: str) -> dict[str, Any]:
        """The job's status (``GET /v1/jobs/{job_id}``): ``state``, ``progress`` (stage,
        percent), ``result`` once succeeded, ``error`` once failed.

        Raises:
            ServiceError: ``job_not_found`` (404), ``job_expired`` (410) ...
        """
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def wait(
        self,
        job_id: str,
        *,
        poll_s: float = 0.5,
        timeout_s: float = 600.0,
        on_poll: PollCallback | None = None,
    ) -> dict[str, Any]:
        """Poll the job every ``poll_s`` seconds until it is ``succeeded``.

        A 429 while polling waits its ``Retry-After`` (seconds) and polls again.

        Returns:
            The final status, ``result`` included.

        Raises:
            JobFailedError: the job ended ``failed`` or ``cancelled``.
            WaitTimeoutError: not finished after ``timeout_s`` seconds.
            ServiceError: the job vanished (``job_not_found``) or the service failed.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                status = self.job(job_id)
            except ServiceError as exc:
                if exc.code != "rate_limited":
                    raise
                time.sleep(min(60.0, exc.retry_after_s or max(poll_s, 1.0)))
                continue
            if on_poll is not None:
                on_poll(status)
            if status["state"] in FINAL_STATES:
                if status["state"] != "succeeded":
                    raise JobFailedError(status)
                return status
            if time.monotonic() > deadline:
                raise WaitTimeoutError(
                    "wait_timeout",
                    f"job {job_id} still {status['state']} after {timeout_s:.0f} s",
                )
            time.sleep(poll_s)

    def result(self, job_id: str) -> AnalysisResult:
        """The analysis of a succeeded job.

        Raises:
            JobFailedError: the job failed or was cancelled.
            ServiceError: ``job_not_finished`` (409) while it is queued or running, or the
                errors of :meth:`job`.
        """
        status = self.job(job_id)
        if status["state"] in {"failed", "cancelled"}:
            raise JobFailedError(status)
        if status["state"] != "succeeded" or status.get("result") is None:
            raise ServiceError(
                "job_not_finished", f"job {job_id} is {status['state']}", status_code=409
            )
        return AnalysisResult.model_validate(status["result"])

    def result_csv(self, job_id: str) -> str:
        """The per-frame CSV of a succeeded job (``GET /v1/jobs/{job_id}/result.csv``;
        columns ``frame, timestamp, success, confidence, apex_score, AU01 ...``).

        Raises:
            ServiceError: ``job_not_finished`` (409), ``job_not_found`` (404) ...
        """
        return self._request("GET", f"/v1/jobs/{job_id}/result.csv").text

    def delete(self, job_id: str) -> None:
        """Cancel the job if it runs and delete it with its upload and result
        (``DELETE /v1/jobs/{job_id}``).

        Raises:
            ServiceError: ``job_not_found`` (404) ...
        """
        self._request("DELETE", f"/v1/jobs/{job_id}")
