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

This module holds the settings and the delivery (attempts, retries, the background
dispatcher); the body and its signature are :mod:`workers.webhook_signing`, the URL checks
:mod:`workers.webhook_urls` (their names stay importable from here).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

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
from workers.webhook_signing import (
    EVENT_JOB_FINISHED,
    SIGNATURE_HEADER,
    payload_for,
    sign,
    verify_signature,
)
from workers.webhook_urls import (
    MAX_CALLBACK_URL_CHARS,
    CallbackUrlNotAllowedError,
    InvalidCallbackUrlError,
    check_callback_url,
)

__all__ = [
    "EVENT_JOB_FINISHED",
    "MAX_CALLBACK_URL_CHARS",
    "SIGNATURE_HEADER",
    "CallbackUrlNotAllowedError",
    "InvalidCallbackUrlError",
    "WebhookDispatcher",
    "WebhookSettings",
    "check_callback_url",
    "deliver",
    "dispatcher",
    "notify_job_end",
    "payload_for",
    "resume_stalled",
    "sign",
    "verify_signature",
]

logger = logging.getLogger(__name__)


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
