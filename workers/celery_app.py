"""The Celery application, configured from :class:`~workers.settings.WorkerSettings`.

Start a worker with::

    MER_BROKER_URL=redis://127.0.0.1:6379/0 celery -A workers.celery_app worker \\
        --pool=solo --concurrency=1 -Q mer --loglevel=INFO

Reliability settings: tasks are acknowledged *after* they ran (``task_acks_late``) and
requeued if the worker process dies (``task_reject_on_worker_lost``); each worker
prefetches one task at a time; the Redis visibility timeout comes from
``MER_VISIBILITY_TIMEOUT_S`` (2 h) and must exceed the longest job (else a long job's
message is handed to a second worker while the first still runs; the job's lease defers
that duplicate). A worker killed outright (SIGKILL, OOM, lost node) does not wait for it:
the lease reaper of the live workers (:mod:`workers.reaper`, started on ``worker_ready``)
requeues its job about 30-40 s after its last heartbeat. No result backend is used: job
state lives in the job store (:mod:`workers.jobstore`).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from workers.logs import configure_logging
from workers.settings import WorkerSettings, get_settings

#: Registered name of the analysis task (the API sends it by name).
ANALYZE_TASK_NAME = "mer.analyze_job"
#: Default queue the API publishes to and the workers consume (``MER_CELERY_QUEUE``).
DEFAULT_QUEUE = "mer"


def create_celery_app(settings: WorkerSettings) -> Celery:
    """Build a Celery app whose broker and reliability options come from ``settings``.

    Args:
        settings: ``broker_url`` (``memory://`` when unset, for imports and tests without
            a broker) and ``visibility_timeout_s`` are used.
    """
    app = Celery("mer", broker=settings.broker_url or "memory://", include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            # sweep for messages of dead workers often enough for the visibility timeout
            "unacked_restore_interval": max(1, min(60, settings.visibility_timeout_s // 5)),
            "unacked_restore_throttle": 1,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
        },
        task_default_queue=settings.celery_queue,
        task_routes={ANALYZE_TASK_NAME: {"queue": settings.celery_queue}},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


#: The worker's app (``celery -A workers.celery_app``), built from the environment.
celery_app: Celery = create_celery_app(get_settings())
app = celery_app


@setup_logging.connect
def _setup_worker_logging(**_: Any) -> None:
    """Structured logs in the worker (``MER_LOG_FORMAT``, ``MER_LOG_LEVEL``) instead of
    Celery's own format; every line of a job carries its ``job_id``."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
