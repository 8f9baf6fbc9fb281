"""What a webhook sends: the JSON body announcing a job's end and its HMAC-SHA256 signature
(:func:`verify_signature` is the receivers' check). Delivery is :mod:`workers.webhooks`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from workers.jobstore import JobRecord, JobState

#: Header carrying ``sha256=<hex>`` of the body when a secret is configured.
SIGNATURE_HEADER = "X-MER-Signature"
#: The one event sent today.
EVENT_JOB_FINISHED = "job.finished"


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
