"""Structured logs for the API and the workers: JSON lines with a request id and a job id.

Two context variables carry the ids: :data:`request_id_var` (set by the API's request-id
middleware from ``X-Request-ID``) and :data:`job_id_var` (set while a job runs, in the API's
embedded runner or a Celery worker). :class:`JsonFormatter` writes one JSON object per
line with ``ts``, ``level``, ``logger``, ``message``, ``request_id``, ``job_id`` and any
``extra={...}`` fields; :func:`configure_logging` installs it (or a plain-text twin) on the
root logger and on uvicorn's loggers.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: ``X-Request-ID`` of the request being served (or of the request that queued the job).
request_id_var: ContextVar[str | None] = ContextVar("mer_request_id", default=None)
#: Id of the job being handled.
job_id_var: ContextVar[str | None] = ContextVar("mer_job_id", default=None)

#: Attributes every :class:`logging.LogRecord` has; anything else came from ``extra``.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "request_id", "job_id", "color_message", "taskName"}

_HANDLER_MARK = "_mer_handler"


def _install_record_factory() -> None:
    """Stamp every new :class:`logging.LogRecord` with the current request and job ids
    (at creation, so handlers that format later, e.g. in tests, still see them)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_mer_ids", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        return record

    factory._mer_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


class ContextFilter(logging.Filter):
    """Copy the current request and job ids onto every record (``None`` when unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` and ``job_id`` unless the caller passed them in ``extra``."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "job_id", None) is None:
            record.job_id = job_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; exceptions as a ``exc`` string (logs only, never a reply)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON."""
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "job_id": getattr(record, "job_id", None) or job_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger [req=.. job=..] message`` for humans."""

    def __init__(self) -> None:
        """Use a fixed layout."""
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s job=%(job_id)s] %(message)s"
        )


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send the root logger (and uvicorn's and Celery's loggers) to stderr in ``fmt``.

    Idempotent: a handler installed by an earlier call is replaced, others on the root
    logger are left alone (pytest's capture handlers keep working).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # the access middleware logs every request with its id: uvicorn's own line is redundant
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


@contextmanager
def bind(*, job_id: str | None = None, request_id: str | None = None) -> Iterator[None]:
    """Set the job and/or request id for the log lines written inside the block."""
    tokens = []
    if job_id is not None:
        tokens.append((job_id_var, job_id_var.set(job_id)))
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
