"""Job runners: where an accepted job executes.

* :class:`EmbeddedRunner` (default, no broker): a :class:`ThreadPoolExecutor` with
  ``settings.embedded_workers`` threads inside the API process.
* :class:`CeleryRunner` (when ``settings.broker_url`` is set): publishes the task
  :data:`~workers.celery_app.ANALYZE_TASK_NAME` to the broker; Celery workers run it.

Both execute :func:`workers.tasks.run_job`, so the job record goes through the same states.
Cancellation is cooperative in both: the owner sets the record's cancel flag and the
pipeline polls it. A job whose key already runs ``max_concurrent_jobs_per_key`` jobs stays
``queued`` and is offered again a few seconds later (a Celery retry with a countdown, a
timer in the embedded runner).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor

from celery import Celery
from kombu.exceptions import ChannelError

from mer.schemas import ErrorInfo
from workers.celery_app import ANALYZE_TASK_NAME, create_celery_app
from workers.errors import QueueUnavailableError
from workers.jobstore import ACTIVE_STATES, JobProgress, JobState, JobStore
from workers.settings import WorkerSettings
from workers.webhooks import WebhookSettings, notify_job_end, resume_stalled

logger = logging.getLogger(__name__)


class JobRunner(ABC):
    """Executes accepted jobs somewhere."""

    #: Short name for health output (``embedded`` or ``celery``).
    kind: str = "abstract"

    @abstractmethod
    def submit(self, job_id: str, path: str, filename: str) -> None:
        """Hand over a job whose record is ``queued``.

        Raises:
            QueueUnavailableError: the job could not be handed over.
        """

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`QueueUnavailableError` if new jobs could not run now."""

    def queue_depth(self) -> int:
        """Jobs handed over but not yet started (0 when unknown)."""
        return 0

    def start(self) -> None:  # noqa: B027 - optional hook
        """Called once when the API starts (no-op by default)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release threads and connections (no-op by default)."""


class EmbeddedRunner(JobRunner):
    """In-process runner: a thread pool of ``settings.embedded_workers`` threads.

    Jobs queued in memory do not survive a restart; :meth:`start` therefore requeues the
    store's ``queued``/``running`` jobs once, assuming one API process owns the store
    (the embedded runner is for single-process deployments and development).
    """

    kind = "embedded"

    def __init__(self, settings: WorkerSettings, store: JobStore) -> None:
        """Run jobs from ``store`` with ``settings`` in up to ``embedded_workers`` threads."""
        self.settings = settings
        self.store = store
        self._executor = ThreadPoolExecutor(
            max_workers=settings.embedded_workers, thread_name_prefix="mer-job"
        )
        self._closed = False

    def _run(self, job_id: str, path: str, filename: str) -> None:
        from workers.tasks import JobBusyError, run_job

        try:
            # one process owns the store: a "running" record is a leftover of a dead one
            run_job(
                job_id, path, filename, store=self.store, settings=self.settings, ignore_lease=True
            )
        except JobBusyError as exc:  # its key runs its quota of jobs: offer it again later
            logger.debug("%s", exc)
            timer = threading.Timer(exc.retry_in_s, self._resubmit, (job_id, path, filename))
            timer.daemon = True
            timer.start()
        except Exception:  # noqa: BLE001 - keep the pool alive whatever happens
            logger.exception("job %s: the runner could not record the outcome", job_id)

    def _resubmit(self, job_id: str, path: str, filename: str) -> None:
        try:
            self.submit(job_id, path, filename)
        except QueueUnavailableError:
            logger.info("job %s: runner shut down; left queued for the next start", job_id)

    def submit(self, job_id: str, path: str, filename: str) -> None:
        """See :meth:`JobRunner.submit`."""
        if self._closed:
            raise QueueUnavailableError("the embedded runner is shut down")
        try:
            future: Future[None] = self._executor.submit(self._run, job_id, path, filename)
        except RuntimeError as exc:  # executor shut down
            raise QueueUnavailableError("the embedded runner is shut down") from exc
        future.add_done_callback(lambda f: f.exception())

    def check(self) -> None:
        """See :meth:`JobRunner.check`."""
        if self._closed:
            raise QueueUnavailableError("the embedded runner is shut down")

    def queue_depth(self) -> int:
        """Jobs waiting for a free thread of the pool."""
        queue = getattr(self._executor, "_work_queue", None)
        return int(queue.qsize()) if queue is not None else 0

    def start(self) -> None:
        """Requeue jobs left ``queued`` or ``running`` by a previous process and resume
        the webhooks it left unsent."""
        from workers.tasks import MAX_ATTEMPTS

        hooks = WebhookSettings()
        for job_id in list(self.store.iter_ids()):
            record = self.store.get(job_id)
            if record is not None and record.webhook is not None:
                resume_stalled(self.store, record, hooks)  # its sender stopped with us
            if record is None or record.state not in ACTIVE_STATES:
                continue
            if record.attempts >= MAX_ATTEMPTS:
                if self.store.update(
                    job_id,
                    only_if_state=ACTIVE_STATES,
                    state=JobState.FAILED,
                    error=ErrorInfo(
                        code="worker_lost",
                        message="the service stopped repeatedly while analysing this video",
                    ),
                ):
                    notify_job_end(self.store, job_id)
                continue
            self.store.update(
                job_id,
                only_if_state=ACTIVE_STATES,
                state=JobState.QUEUED,
                progress=JobProgress(stage="queued", percent=0.0),
            )
            logger.info("job %s: requeued after a restart", job_id)
            self.submit(job_id, record.upload_path, record.filename)

    def close(self) -> None:
        """Stop accepting jobs; running jobs finish in their threads, queued ones stay
        ``queued`` in the store and are requeued by the next :meth:`start`."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)


class CeleryRunner(JobRunner):
    """Publishes jobs to the Celery broker (``settings.broker_url``)."""

    kind = "celery"

    def __init__(
        self, settings: WorkerSettings, app: Celery | None = None, queue: str | None = None
    ) -> None:
        """Publish with ``app`` (built from ``settings`` when omitted) to ``queue``
        (default ``settings.celery_queue``)."""
        if not settings.broker_url:
            raise ValueError("CeleryRunner needs settings.broker_url")
        self.settings = settings
        self.app = app or create_celery_app(settings)
        self.queue = queue or settings.celery_queue

    def submit(self, job_id: str, path: str, filename: str) -> None:
        """See :meth:`JobRunner.submit`."""
        try:
            self.app.send_task(ANALYZE_TASK_NAME, args=[job_id, path, filename], queue=self.queue)
        except Exception as exc:  # kombu raises various connection errors
            logger.warning("job %s: could not publish to the broker: %s", job_id, exc)
            raise QueueUnavailableError(
                f"the job queue is unavailable ({exc.__class__.__name__})"
            ) from exc

    def check(self) -> None:
        """See :meth:`JobRunner.check`: connect to the broker once."""
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
        except Exception as exc:  # noqa: BLE001
            raise QueueUnavailableError(
                f"the broker is unreachable ({exc.__class__.__name__})"
            ) from exc

    def queue_depth(self) -> int:
        """Messages waiting in the broker queue (all priority levels)."""
        with self.app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
            try:
                _, count, _ = conn.default_channel.queue_declare(self.queue, passive=True)
            except ChannelError:  # Redis drops empty lists: no queue means no messages
                return 0
        return int(count)

    def close(self) -> None:
        """Close the producer pool."""
        try:
            self.app.close()
        except Exception:  # noqa: BLE001
            logger.debug("closing the Celery app failed", exc_info=True)


def make_runner(settings: WorkerSettings, store: JobStore) -> JobRunner:
    """The runner the settings ask for: Celery when ``broker_url`` is set, else embedded."""
    if settings.broker_url:
        return CeleryRunner(settings)
    return EmbeddedRunner(settings, store)
