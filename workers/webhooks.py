"""Webhooks: POST a job's outcome to its ``callback_url`` when the job ends.

A client may give ``callback_url`` with ``POST /v1/analyze``. When the job ends
(``succeeded``, ``failed`` or ``cancelled``) whoever recorded the end (a worker, the
embedded runner, or the API for a queued job cancelled at once) hands the record to
:func:`notify`, which sends in a background thread:

``POST <callback_url>`` with ``Content-Type: application/json`` and the body
``{"event": "job.finished", "job_id", "state", "error": {code, message} | null,
"result_url", "csv_url" | null, "filename", "finished_at"}``; headers ``X-MER-Event``,
``X-MER-Delivery`` (the job id) and, when ``MER_WEBHOOK_SECRET`` is set,
``X-MER-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>``.

Delivery is retried with exponential backoff (``tenacity``) on connection errors,
timeouts, 408, 429 and 5xx answers, for at most ``MER_WEBHOOK_RETRY_S`` seconds; any
other 4xx answer is final. Every attempt is written to the job record's ``webhook``
(``GET /v1/jobs/{id}`` shows it). Redirects are not followed.

Only ``http``/``https`` URLs are accepted, and a host that resolves to a private,
loopback, link-local, multicast, reserved or unspecified address is refused (checked at
submission and again before every attempt) unless ``MER_WEBHOOK_ALLOW_PRIVATE=true``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from mer.errors import MERError
from workers.jobstore import JobRecord, JobState, JobStore, WebhookDelivery, utcnow
from workers.logs import bind

logger = logging.getLogger(__name__)

#: Header carrying ``sha256=<hex>`` of the body when a secret is configured.
SIGNATURE_HEADER = "X-MER-Signature"
#: The one event sent today.
EVENT_JOB_FINISHED = "job.finished"
#: Longest accepted ``callback_url`` (characters).
MAX_CALLBACK_URL_CHARS = 2048


class WebhookSettings(BaseSettings):
    """Webhook delivery settings (``MER_WEBHOOK_*`` environment variables).

    Read by the API (URL checks) and by whoever sends (workers, the embedded runner).
    """

    model_config = SettingsConfigDict(env_prefix="MER_WEBHOOK_", env_file=".env", extra="ignore")

    secret: SecretStr | None = Field(
        None, description="Signs each body: X-MER-Signature: sha256=<HMAC-SHA256 hex>."
    )
    allow_private: bool = Field(
        False,
        description="Allow callback URLs on private, loopback and link-local addresses "
        "(development and tests only).",
    )
    timeout_s: float = Field(10.0, gt=0, description="Seconds one delivery attempt may take.")
    retry_s: float = Field(
        300.0, ge=0, description="Seconds within which failed deliveries are retried."
    )
    backoff_s: float = Field(
        1.0, gt=0, description="First retry delay (seconds); doubles with every retry."
    )
    backoff_max_s: float = Field(60.0, gt=0, description="Longest delay between two retries.")


class InvalidCallbackUrlError(MERError):
    """``callback_url`` is not an absolute http(s) URL with a resolvable host."""

    code = "invalid_callback_url"


class CallbackUrlNotAllowedError(MERError):
    """``callback_url`` points at a private, loopback or link-local address."""

    code = "callback_url_not_allowed"


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_callback_url(url: str, *, allow_private: bool) -> str:
    """Validate a client's ``callback_url``; return it stripped.

    Args:
        url: the URL as sent.
        allow_private: accept private, loopback and link-local targets.

    Raises:
        InvalidCallbackUrlError: not http(s), no host, too long, or the host does not
            resolve.
        CallbackUrlNotAllowedError: the host resolves to a refused address.
    """
    url = url.strip()
    if not url or len(url) > MAX_CALLBACK_URL_CHARS:
        raise InvalidCallbackUrlError(
            f"callback_url must be an http(s) URL of at most {MAX_CALLBACK_URL_CHARS} characters"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidCallbackUrlError(f"callback_url is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidCallbackUrlError("callback_url must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise InvalidCallbackUrlError("callback_url must not carry credentials")
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise InvalidCallbackUrlError(
            f"the host of callback_url ({parts.hostname}) does not resolve"
        ) from exc
    refused = sorted({str(info[4][0]) for info in infos if _address_refused(str(info[4][0]))})
    if refused:
        raise CallbackUrlNotAllowedError(
            f"callback_url resolves to a private, loopback or link-local address "
            f"({', '.join(refused)}); such targets are refused"
        )
    return url


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``body`` keyed with ``secret`` (UTF-8)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    """Whether ``header`` (``X-MER-Signature``) is the signature of ``body`` (receivers)."""
    return hmac.compare_digest(sign(body, secret), header.strip())


def payload_for(record: JobRecord) -> bytes:
    """The JSON body announcing ``record``'s end (compact, UTF-8)."""
    hook = record.webhook
    result_url = hook.result_url if hook is not None else None
    data: dict[str, Any] = {
        "event": EVENT_JOB_FINISHED,
        "job_id": record.id,
        "state": record.state.value,
        "error": record.error.model_dump() if record.error is not None else None,
        "result_url": result_url,
        "csv_url": f"{result_url}/result.csv"
        if result_url and record.state == JobState.SUCCEEDED
        else None,
        "filename": record.filename,
        "finished_at": record.updated_at.isoformat(),
    }
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


class _Retryable(Exception):
    """A delivery attempt failed in a way worth retrying."""


class _Final(Exception):
    """A delivery attempt failed for good (refused target, 4xx answer)."""


def _record_attempt(
    store: JobStore,
    job_id: str,
    hook: WebhookDelivery,
    *,
    status: str,
    code: int | None,
    error: str | None,
) -> WebhookDelivery:
    now = utcnow()
    hook = hook.model_copy(
        update={
            "status": status,
            "attempts": hook.attempts + 1,
            "last_status_code": code,
            "last_error": error,
            "last_attempt_at": now,
            "delivered_at": now if status == "delivered" else None,
        }
    )
    try:
        store.update(job_id, webhook=hook)
    except Exception:  # noqa: BLE001 - the delivery itself matters more
        logger.warning("could not record a webhook attempt", exc_info=True)
    return hook


def deliver(
    store: JobStore,
    record: JobRecord,
    settings: WebhookSettings,
    transport: httpx.BaseTransport | None = None,
) -> WebhookDelivery:
    """Send ``record``'s outcome to its ``callback_url``, retrying; record every attempt.

    Args:
        store: where the attempts are recorded (the record's ``webhook`` field).
        record: a finished job with a ``webhook``.
        settings: secret, private-target policy, timeout and retry bounds.
        transport: an ``httpx`` transport (tests); the default network otherwise.

    Returns:
        The final :class:`WebhookDelivery` (``delivered`` or ``failed``).
    """
    hook = record.webhook
    if hook is None:
        raise ValueError(f"job {record.id} has no callback_url")
    body = payload_for(record)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "mer-service-webhook/1",
        "X-MER-Event": EVENT_JOB_FINISHED,
        "X-MER-Delivery": record.id,
    }
    if settings.secret is not None and settings.secret.get_secret_value():
        headers[SIGNATURE_HEADER] = sign(body, settings.secret.get_secret_value())

    retrying = Retrying(
        stop=stop_after_delay(settings.retry_s),
        wait=wait_exponential(multiplier=settings.backoff_s, max=settings.backoff_max_s),
        retry=retry_if_exception_type(_Retryable),
        reraise=True,
    )
    state = {"hook": hook}
    with httpx.Client(
        timeout=settings.timeout_s, follow_redirects=False, transport=transport
    ) as client:

        def attempt() -> None:
            current = state["hook"]
            try:
                check_callback_url(current.url, allow_private=settings.allow_private)
            except MERError as exc:
                state["hook"] = _record_attempt(
                    store, record.id, current, status="failed", code=None, error=exc.message
                )
                raise _Final(exc.message) from exc
            try:
                response = client.post(current.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                message = f"{exc.__class__.__name__}: {exc}"[:300]
                state["hook"] = _record_attempt(
                    store, record.id, current, status="delivering", code=None, error=message
                )
                raise _Retryable(message) from exc
            code = response.status_code
            if 200 <= code < 300:
                state["hook"] = _record_attempt(
                    store, record.id, current, status="delivered", code=code, error=None
                )
                return
            message = f"the receiver answered HTTP {code}"
            if code in (408, 429) or code >= 500:
                state["hook"] = _record_attempt(
                    store, record.id, current, status="delivering", code=code, error=message
                )
                raise _Retryable(message)
            state["hook"] = _record_attempt(
                store, record.id, current, status="failed", code=code, error=message
            )
            raise _Final(message)

        try:
            for try_ in retrying:
                with try_:
                    attempt()
        except _Retryable as exc:
            final = state["hook"].model_copy(update={"status": "failed"})
            try:
                store.update(record.id, webhook=final)
            except Exception:  # noqa: BLE001
                logger.warning("could not record the webhook's failure", exc_info=True)
            state["hook"] = final
            logger.warning("webhook to %s failed for good: %s", hook.url, exc)
        except _Final as exc:
            logger.warning("webhook to %s refused: %s", hook.url, exc)
    result = state["hook"]
    if result.status == "delivered":
        logger.info("webhook delivered after %d attempt(s)", result.attempts)
    return result


class WebhookDispatcher:
    """Sends webhooks in background threads (a small pool per process)."""

    def __init__(self, max_workers: int = 4) -> None:
        """Up to ``max_workers`` deliveries (with their retries) at once."""
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="mer-webhook"
        )

    def notify(self, store: JobStore, record: JobRecord) -> bool:
        """Start delivering ``record``'s outcome if it has a pending webhook.

        Claims the delivery with a compare-and-set on the ``webhook`` field
        (``pending -> delivering``), so one job's end is announced once even if two
        processes see it. Returns ``True`` if a delivery was started.
        """
        hook = record.webhook
        if hook is None or hook.status != "pending" or record.state not in _ENDED:
            return False
        claimed = hook.model_copy(update={"status": "delivering"})
        if not store.update(record.id, expect={"webhook": hook}, webhook=claimed):
            return False
        record = record.model_copy(update={"webhook": claimed})
        settings = WebhookSettings()
        self._executor.submit(self._run, store, record, settings)
        return True

    @staticmethod
    def _run(store: JobStore, record: JobRecord, settings: WebhookSettings) -> None:
        with bind(job_id=record.id):
            try:
                deliver(store, record, settings)
            except Exception:  # noqa: BLE001 - keep the pool alive
                logger.exception("webhook delivery crashed")


_ENDED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
_dispatcher: WebhookDispatcher | None = None
_dispatcher_lock = threading.Lock()


def dispatcher() -> WebhookDispatcher:
    """This process's :class:`WebhookDispatcher` (created on first use)."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            _dispatcher = WebhookDispatcher()
        return _dispatcher


def resume_stalled(store: JobStore, record: JobRecord, settings: WebhookSettings) -> bool:
    """Restart the webhook of a finished job whose sender died (the lease reaper).

    ``pending`` after the job ended more than a minute ago (its process died between
    recording the end and starting the delivery), or ``delivering`` with no attempt for
    longer than a whole retry window (its process died mid-retries): set back to
    ``pending`` with a compare-and-set, then delivered here. Returns ``True`` if resumed.
    """
    hook = record.webhook
    if hook is None or record.state not in _ENDED:
        return False
    now = utcnow()
    if hook.status == "pending":
        stalled = (now - record.updated_at).total_seconds() > 60
    elif hook.status == "delivering":
        last = hook.last_attempt_at or record.updated_at
        window = settings.retry_s + settings.backoff_max_s + settings.timeout_s + 60
        stalled = (now - last).total_seconds() > window
    else:
        return False
    if not stalled:
        return False
    if hook.status == "delivering":
        reset = hook.model_copy(update={"status": "pending"})
        if not store.update(record.id, expect={"webhook": hook}, webhook=reset):
            return False
        record = record.model_copy(update={"webhook": reset})
    with bind(job_id=record.id):
        logger.warning("job %s: its webhook stalled (%s); resuming", record.id, hook.status)
    return dispatcher().notify(store, record)


def notify_job_end(store: JobStore, job_id: str) -> None:
    """Announce ``job_id``'s end if it asked for a webhook; never raises."""
    try:
        record = store.get(job_id)
        if record is not None and record.webhook is not None:
            dispatcher().notify(store, record)
    except Exception:  # noqa: BLE001 - a webhook never breaks a job
        logger.warning("job %s: could not start its webhook", job_id, exc_info=True)
