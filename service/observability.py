"""Request ids, access logs and Prometheus metrics.

:class:`ObservabilityMiddleware` (pure ASGI, so streamed uploads stay streamed) gives
every request an id (the client's ``X-Request-ID`` when it is a sane token, else a new
one), echoes it in the response's ``X-Request-ID``, binds it to the log context, writes one
access log line and records the request metrics. An exception that escapes the app
becomes a 500 ``internal_error`` JSON body here (traceback in the log only).

Metrics (one registry per app, served at ``GET /metrics``):

* ``mer_http_requests_total{method,route,status}`` and
  ``mer_http_request_duration_seconds{method,route}``;
* ``mer_errors_total{code}``: error responses by their ``code``;
* ``mer_queue_depth``: jobs waiting in the runner's queue (the broker for Celery);
* ``mer_jobs_finished_total{state,code}`` and ``mer_job_stage_duration_seconds{stage}``:
  job outcomes and per-stage times, read from the job store (shared by all workers
  with Redis).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.jobstore import JobStore
from workers.logs import request_id_var

logger = logging.getLogger("mer.access")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUEST_ID_HEADER = "x-request-id"


def request_id_from(value: str | None) -> str:
    """The client's request id if it is a sane token, else a fresh random one."""
    if value and _REQUEST_ID_RE.fullmatch(value):
        return value
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/jobs/{job_id}``), or ``unmatched``.

    Low-cardinality label for metrics and logs (never the raw path)."""
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(context, "path", None)  # FastAPI >= 0.16x: full path of included routes
    if not path:
        route = scope.get("route")
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"


class _JobStatsCollector(Collector):
    """Exposes the job store's outcome counters and stage-time histograms."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        try:
            stats = self.store.read_stats()
        except Exception:  # noqa: BLE001 - a down store must not break /metrics
            logger.warning("could not read job statistics", exc_info=True)
            return
        yield from stats.families()


class Metrics:
    """The Prometheus metrics of one app (own registry)."""

    def __init__(self, store: JobStore) -> None:
        """Create the metrics and register the job-statistics collector for ``store``."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mer_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mer_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.errors = Counter(
            "mer_errors", "Error responses by code.", ["code"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "mer_queue_depth", "Jobs waiting in the runner's queue.", registry=self.registry
        )
        self.registry.register(_JobStatsCollector(store))


class ObservabilityMiddleware:
    """Request id, access log, request metrics and a last-resort JSON 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        """Wrap ``app``; record into ``metrics``."""
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(REQUEST_ID_HEADER.encode())
        request_id = request_id_from(raw.decode("latin-1") if raw else None)
        token = request_id_var.set(request_id)
        status = 500
        started = False
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                hdrs = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                hdrs.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": hdrs}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            status = 500
            self.metrics.errors.labels("internal_error").inc()
            if not started:
                body = json.dumps({"code": "internal_error", "message": "internal server error"})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"x-request-id", request_id.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body.encode()})
        finally:
            elapsed = time.perf_counter() - t0
            template = route_template(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            principal = getattr(scope.get("state", {}).get("principal"), "name", None)
            logger.info(
                "%s %s %d %.1f ms",
                method,
                scope.get("path"),
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client_key": principal,
                },
            )
            request_id_var.reset(token)
