"""Job records shared by the API and the workers.

A job record (:class:`JobRecord`) is the single source of truth about a job: the API
never asks Celery about task state (an unknown id would look ``PENDING`` there). Two
stores implement :class:`JobStore`:

* :class:`FileJobStore` (default): one JSON file per job under ``data_dir/jobs/``,
  written atomically (temporary file + :func:`os.replace`), so restarting the API loses
  nothing. Read-modify-write cycles hold an ``fcntl`` lock, so threads and processes
  sharing the directory do not lose each other's updates.
* :class:`RedisJobStore` (when :attr:`Settings.effective_redis_url` is set): one Redis hash
  per job and the result JSON in a separate key, both expiring after ``job_ttl_s``.
  Conditional updates run as one Lua script, so they are atomic.

Updates are *conditional*: :meth:`JobStore.update` changes nothing when the record is gone
(deleted by its owner) or is not in one of the expected states, which is how a worker
that finishes after a cancel or a delete leaves the record alone. ``expect`` adds a
compare-and-set on other fields (the ``attempts`` counter is the run's lease token).

Besides records and results, a store keeps small bookkeeping shared by every API process
and worker: *tombstones* (an expired id answers 410, an unknown one 404), *idempotency
keys* (a replayed ``POST /v1/analyze`` returns the first job), *per-owner job slots* (the
backlog quota: queued + running jobs of a key), *per-owner run slots* (how many of a key's
jobs run at once; leases that a dead worker's heartbeat stops renewing) and *job outcome
statistics* (Prometheus metrics).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import redis
from pydantic import BaseModel, Field, ValidationError

from mer.schemas import ErrorInfo
from mer.settings import Settings
from workers.errors import StoreUnavailableError

_JOB_ID_RE = re.compile(r"[0-9a-f]{32}")
logger_store = logging.getLogger(__name__)


#: Quota owner of jobs submitted with authentication off (the API's anonymous principal).
ANONYMOUS_OWNER = "anonymous"


def is_valid_job_id(job_id: str) -> bool:
    """Whether ``job_id`` has the shape of an id made by :func:`new_job_id`."""
    return bool(_JOB_ID_RE.fullmatch(job_id))


def new_job_id() -> str:
    """Return a fresh random job id (32 lowercase hex digits)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class JobState(StrEnum):
    """Lifecycle of a job: ``queued -> running -> succeeded | failed | cancelled``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States a job never leaves.
TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
)
#: States in which a job may still be picked up or be running.
ACTIVE_STATES: frozenset[JobState] = frozenset({JobState.QUEUED, JobState.RUNNING})


class JobProgress(BaseModel):
    """Where a job is: the pipeline stage and the overall percentage (0..100)."""

    stage: str = Field("queued", description="Pipeline stage name, e.g. decode, au, done.")
    percent: float = Field(0.0, ge=0.0, le=100.0, description="Overall progress (%).")


class WebhookDelivery(BaseModel):
    """The job's ``callback_url`` and what became of its notification.

    Attributes:
        url: where the service POSTs the job's outcome (http or https).
        result_url: the job's absolute status URL, sent in the notification.
        status: ``pending`` (job not finished), ``delivering`` (being sent, with
            retries), ``delivered`` (the receiver answered 2xx) or ``failed`` (refused,
            or still failing when the retry time ran out).
        attempts: HTTP requests made so far.
        last_status_code: HTTP status of the last answer (``None``: no answer).
        last_error: why the last attempt failed (``None`` after a success).
        last_attempt_at, delivered_at: UTC timestamps.
    """

    url: str
    result_url: str | None = None
    status: Literal["pending", "delivering", "delivered", "failed"] = "pending"
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class JobRecord(BaseModel):
    """What the service knows about one job.

    Attributes:
        id: the job id (32 hex digits).
        state: see :class:`JobState`.
        progress: latest reported stage and percentage.
        filename: the client's file name, sanitised; metadata only, never a path.
        upload_path: where the upload was stored on the server.
        created_at, updated_at: UTC timestamps.
        error: ``{code, message}`` when the job failed or was cancelled.
        cancel_requested: set by the owner; the worker polls it.
        attempts: how many times a worker started the job (redeliveries count).
        owner: name of the API key that submitted the job (``None``: auth off).
        request_id: the ``X-Request-ID`` of the submitting request (for the logs).
        worker: who runs the current attempt (``host:pid``).
        heartbeat_at: last sign of life of the current attempt (its lease).
        queue: the Celery queue the current attempt was delivered from (the lease
            reaper publishes a takeover there); ``None`` in the embedded runner.
        webhook: the ``callback_url`` and its delivery (``None``: no callback asked).
    """

    id: str
    state: JobState = JobState.QUEUED
    progress: JobProgress = Field(default_factory=JobProgress)
    filename: str
    upload_path: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    error: ErrorInfo | None = None
    cancel_requested: bool = False
    attempts: int = 0
    owner: str | None = None
    request_id: str | None = None
    worker: str | None = None
    heartbeat_at: datetime | None = None
    queue: str | None = None
    webhook: WebhookDelivery | None = None


def quota_owner(record: JobRecord) -> str:
    """The name the job's backlog and run slots are kept under (its key, or anonymous)."""
    return record.owner or ANONYMOUS_OWNER


_UPDATABLE = frozenset(JobRecord.model_fields) - {"id", "created_at"}


def _encode_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate update keys and convert values to JSON-ready data (``updated_at`` added)."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update job record fields {sorted(unknown)}")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, StrEnum):
            value = value.value
        out[key] = value
    out.setdefault("updated_at", utcnow().isoformat())
    return out


def _encode_expect(expect: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-ready values of an ``expect`` mapping (same encoding as the records)."""
    if not expect:
        return {}
    unknown = set(expect) - set(JobRecord.model_fields)
    if unknown:
        raise ValueError(f"cannot compare job record fields {sorted(unknown)}")
    out = _encode_changes(dict(expect))
    if "updated_at" not in expect:
        out.pop("updated_at", None)
    return out


class JobStore(ABC):
    """Storage of job records and results, shared by the API and the workers."""

    #: Short name for health output (``file`` or ``redis``).
    kind: str = "abstract"

    @abstractmethod
    def create(self, record: JobRecord) -> None:
        """Store a new record (overwrites one with the same id)."""

    @abstractmethod
    def get(self, job_id: str) -> JobRecord | None:
        """Return the record, or ``None`` if the id is unknown, malformed or expired."""

    @abstractmethod
    def update(
        self,
        job_id: str,
        *,
        only_if_state: Collection[JobState] | None = None,
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        """Atomically change fields of an existing record.

        Args:
            job_id: the job.
            only_if_state: when given, change nothing unless the current state is in it.
            expect: when given, change nothing unless each named field currently has the
                given value (compare-and-set, e.g. ``{"attempts": 2}``).
            **changes: :class:`JobRecord` fields (not ``id``/``created_at``);
                ``updated_at`` is set to now unless given.

        Returns:
            ``True`` if the record existed, matched and was changed.
        """

    @abstractmethod
    def set_result(self, job_id: str, result_json: str) -> None:
        """Store the result JSON of a job (an :class:`~mer.schemas.AnalysisResult`)."""

    @abstractmethod
    def get_result(self, job_id: str) -> str | None:
        """Return the stored result JSON, or ``None``."""

    @abstractmethod
    def delete_result(self, job_id: str) -> None:
        """Remove the stored result, if any."""

    @abstractmethod
    def delete(self, job_id: str) -> bool:
        """Remove the record and its result; ``True`` if a record existed."""

    @abstractmethod
    def iter_ids(self) -> Iterator[str]:
        """Yield the ids of all stored records (no particular order)."""

    @abstractmethod
    def ping(self) -> None:
        """Check the store is reachable and writable; raise ``StoreUnavailableError``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (no-op by default)."""

    def request_cancel(
        self, job_id: str, on_cancelled: Callable[[JobRecord], None] | None = None
    ) -> JobRecord | None:
        """Ask for a job to stop and return the updated record (``None`` if unknown).

        A queued job becomes ``cancelled`` at once (then ``on_cancelled(record)`` is
        called, e.g. to send its webhook); a running one gets ``cancel_requested`` and
        stops at the worker's next poll; a finished one is left unchanged.
        """
        cancelled = ErrorInfo(code="job_cancelled", message="the job was cancelled")
        ended = self.update(
            job_id,
            only_if_state={JobState.QUEUED},
            state=JobState.CANCELLED,
            cancel_requested=True,
            error=cancelled,
            progress=JobProgress(stage="cancelled", percent=0.0),
        )
        self.update(job_id, only_if_state={JobState.RUNNING}, cancel_requested=True)
        record = self.get(job_id)
        if ended and record is not None and on_cancelled is not None:
            on_cancelled(record)
        return record

    # -- retention tombstones ----------------------------------------------------------
    @abstractmethod
    def is_expired(self, job_id: str) -> bool:
        """Whether ``job_id`` named a job that retention removed (not its owner).

        Only meaningful when :meth:`get` returned ``None``: the API answers 410 then.
        """

    def purge(self) -> int:
        """Remove stale bookkeeping (expired records, tombstones); return how many."""
        return 0

    # -- idempotency keys --------------------------------------------------------------
    @abstractmethod
    def claim_idempotency(self, scope: str, job_id: str, ttl_s: int) -> str | None:
        """Bind the idempotency ``scope`` to ``job_id`` for ``ttl_s`` s, unless bound.

        Args:
            scope: owner and client key, e.g. ``"alice\x00<Idempotency-Key>"`` (hashed
                before it is stored).
            job_id: the job the caller is about to create.
            ttl_s: how long the binding lives.

        Returns:
            ``None`` when this call bound it, else the job id it was bound to already.
        """

    @abstractmethod
    def release_idempotency(self, scope: str, job_id: str) -> None:
        """Unbind ``scope`` if it is still bound to ``job_id`` (its submission failed)."""

    # -- per-owner job slots (backlog quota) -------------------------------------------
    @abstractmethod
    def _slot_members(self, owner: str) -> dict[str, float]:
        """``{job_id: reserved_at (epoch s)}`` of ``owner``'s slots."""

    @abstractmethod
    def _slot_add(self, owner: str, job_id: str, now: float) -> int:
        """Add a slot; return how many slots ``owner`` holds now."""

    @abstractmethod
    def release_slot(self, owner: str, job_id: str) -> None:
        """Give back ``owner``'s slot for ``job_id`` (no-op if it holds none)."""

    def active_slots(self, owner: str, grace_s: float = 900.0) -> int:
        """How many of ``owner``'s slots still hold a queued or running job.

        Slots of finished, deleted or expired jobs are released on the way. A slot whose
        record does not exist yet (its upload is still arriving) counts for ``grace_s``
        seconds after it was reserved (the upload timeout plus a margin); a deleted job's
        slot is released by the delete itself (:meth:`release_slot`).
        """
        now = time.time()
        active = 0
        for job_id, since in self._slot_members(owner).items():
            record = self.get(job_id)
            if record is None and now - since < grace_s:
                active += 1
            elif record is None or record.state not in ACTIVE_STATES:
                self.release_slot(owner, job_id)
            else:
                active += 1
        return active

    def reserve_slot(self, owner: str, job_id: str, limit: int, grace_s: float = 900.0) -> bool:
        """Take one of ``owner``'s ``limit`` backlog slots (queued + running jobs).

        Add-then-count, so two racing submissions can both be refused but never both
        pass the limit. Returns ``False`` (and holds nothing) when the backlog is full.
        """
        self.active_slots(owner, grace_s)  # release finished jobs' slots first
        if self._slot_add(owner, job_id, time.time()) > limit:
            self.release_slot(owner, job_id)
            return False
        return True

    # -- per-owner run slots (how many of a key's jobs run at once) ---------------------
    @abstractmethod
    def acquire_run_slot(self, owner: str, job_id: str, limit: int, lease_s: float) -> bool:
        """Let ``job_id`` run if ``owner`` has fewer than ``limit`` jobs running.

        Each run slot is a lease that ends ``lease_s`` seconds from now unless renewed
        (:meth:`renew_run_slot`, by the job's heartbeat), so a dead worker's slot frees
        itself. A job that holds a slot already (a takeover) keeps it. Atomic: racing
        workers never pass the limit together.

        Returns:
            ``True`` if the job holds a run slot now.
        """

    @abstractmethod
    def renew_run_slot(self, owner: str, job_id: str, lease_s: float) -> None:
        """Extend ``job_id``'s run slot to ``lease_s`` seconds from now (if it holds one)."""

    @abstractmethod
    def release_run_slot(self, owner: str, job_id: str) -> None:
        """Give back ``job_id``'s run slot (no-op if it holds none)."""

    # -- job outcome statistics (Prometheus) --------------------------------------------
    def record_outcome(
        self, state: str, code: str | None, timings_ms: Mapping[str, float] | None = None
    ) -> None:
        """Count one finished job (``state``, error ``code``) and its per-stage times.

        Default: kept in this process's memory. Never raises (metrics are best effort).
        """
        self._memory_stats().add(state, code, timings_ms or {})

    def read_stats(self) -> JobStats:
        """Counts of finished jobs by outcome and per-stage time histograms."""
        return self._memory_stats().snapshot()

    def _memory_stats(self) -> JobStats:
        stats = self.__dict__.get("_stats")
        if stats is None:
            stats = self.__dict__.setdefault("_stats", JobStats())
        return stats


#: Upper bounds (seconds) of the per-stage time histogram buckets (``+Inf`` implied).
STAGE_BUCKETS_S: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip


def bucket_index(seconds: float) -> int:
    """Index of the first histogram bucket holding ``seconds`` (``len`` = ``+Inf``)."""
    for i, bound in enumerate(STAGE_BUCKETS_S):
        if seconds <= bound:
            return i
    return len(STAGE_BUCKETS_S)


class JobStats:
    """Job outcome counters and per-stage time histograms (non-cumulative buckets).

    Attributes:
        outcomes: ``{(state, code): count}``; ``code`` is ``""`` for a success.
        stage_buckets: ``{stage: [count per bucket of STAGE_BUCKETS_S, then +Inf]}``.
        stage_sum_s: ``{stage: total seconds}``.
    """

    def __init__(self) -> None:
        """Start empty."""
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.stage_buckets: dict[str, list[int]] = {}
        self.stage_sum_s: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, state: str, code: str | None, timings_ms: Mapping[str, float]) -> None:
        """Count one job outcome and its stage times (milliseconds)."""
        with self._lock:
            self.outcomes[(state, code or "")] += 1
            for stage, ms in timings_ms.items():
                self.add_stage(stage, bucket_index(ms / 1000.0), ms / 1000.0)

    def add_stage(self, stage: str, index: int, seconds: float) -> None:
        """Add one observation to ``stage``'s histogram (caller holds the lock if needed)."""
        buckets = self.stage_buckets.setdefault(stage, [0] * (len(STAGE_BUCKETS_S) + 1))
        buckets[index] += 1
        self.stage_sum_s[stage] = self.stage_sum_s.get(stage, 0.0) + seconds

    def snapshot(self) -> JobStats:
        """A copy that later updates do not change."""
        copy = JobStats()
        with self._lock:
            copy.outcomes = Counter(self.outcomes)
            copy.stage_buckets = {k: list(v) for k, v in self.stage_buckets.items()}
            copy.stage_sum_s = dict(self.stage_sum_s)
        return copy


def scope_digest(scope: str) -> str:
    """SHA-256 hex of an idempotency scope or owner name (safe as a key or file name)."""
    return hashlib.sha256(scope.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------
# File store
# --------------------------------------------------------------------------------------


class FileJobStore(JobStore):
    """JSON files under ``<data_dir>/jobs/``: ``<id>.json`` and ``<id>.result.json``.

    Records older than ``ttl_s`` read as absent and are removed when read, leaving a
    tombstone ``<id>.expired`` for ``tombstone_ttl_s``. Idempotency keys live in
    ``idem/<sha256>.json``, per-owner job slots in ``slots/<sha256>.json``, run slots in
    ``running/<sha256>.json``. Outcome
    statistics are per process (this store serves one API process and its embedded
    runner).
    """

    kind = "file"

    def __init__(self, root: Path, ttl_s: int, tombstone_ttl_s: int = 30 * 24 * 3600) -> None:
        """Use ``root`` (created on first write) and expire records after ``ttl_s`` s."""
        self.root = Path(root)
        self.ttl_s = ttl_s
        self.tombstone_ttl_s = tombstone_ttl_s

    # -- paths and primitives ----------------------------------------------------------
    def _record_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def _result_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.result.json"

    def _tombstone_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.expired"

    def _idem_path(self, scope: str) -> Path:
        return self.root / "idem" / f"{scope_digest(scope)}.json"

    def _slots_path(self, owner: str) -> Path:
        return self.root / "slots" / f"{scope_digest(owner)}.json"

    def _read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return None
        except OSError as exc:
            raise StoreUnavailableError(f"cannot read the job store: {exc}") from exc

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot create the job directory: {exc}") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store-wide write lock (threads and processes alike)."""
        self._ensure_root()
        with open(self.root / ".lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _write_atomic(self, path: Path, text: str) -> None:
        self._ensure_root()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StoreUnavailableError(f"cannot write the job store: {exc}") from exc

    def _read(self, job_id: str) -> JobRecord | None:
        if not is_valid_job_id(job_id):
            return None
        try:
            text = self._record_path(job_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailableError(f"cannot read the job store: {exc}") from exc
        try:
            return JobRecord.model_validate_json(text)
        except ValidationError:
            return None

    def _expired(self, record: JobRecord) -> bool:
        return (utcnow() - record.created_at).total_seconds() > self.ttl_s

    # -- JobStore ----------------------------------------------------------------------
    def create(self, record: JobRecord) -> None:
        """See :meth:`JobStore.create`."""
        if not is_valid_job_id(record.id):
            raise ValueError(f"malformed job id {record.id!r}")
        with self._locked():
            self._write_atomic(self._record_path(record.id), record.model_dump_json())

    def get(self, job_id: str) -> JobRecord | None:
        """See :meth:`JobStore.get`."""
        record = self._read(job_id)
        if record is not None and self._expired(record):
            self.delete(job_id)
            if self.tombstone_ttl_s > 0:
                with contextlib.suppress(OSError):
                    self._tombstone_path(job_id).touch()
            return None
        return record

    def update(
        self,
        job_id: str,
        *,
        only_if_state: Collection[JobState] | None = None,
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        """See :meth:`JobStore.update`."""
        encoded = _encode_changes(changes)
        expected = _encode_expect(expect)
        if not is_valid_job_id(job_id):
            return False
        with self._locked():
            record = self._read(job_id)
            if record is None:
                return False
            if only_if_state is not None and record.state not in only_if_state:
                return False
            data = record.model_dump(mode="json")
            if any(data.get(k) != v for k, v in expected.items()):
                return False
            data.update(encoded)
            new = JobRecord.model_validate(data)
            self._write_atomic(self._record_path(job_id), new.model_dump_json())
        return True

    def set_result(self, job_id: str, result_json: str) -> None:
        """See :meth:`JobStore.set_result`."""
        if not is_valid_job_id(job_id):
            raise ValueError(f"malformed job id {job_id!r}")
        self._write_atomic(self._result_path(job_id), result_json)

    def get_result(self, job_id: str) -> str | None:
        """See :meth:`JobStore.get_result`."""
        if not is_valid_job_id(job_id):
            return None
        try:
            return self._result_path(job_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailableError(f"cannot read the job store: {exc}") from exc

    def delete_result(self, job_id: str) -> None:
        """See :meth:`JobStore.delete_result`."""
        if is_valid_job_id(job_id):
            with contextlib.suppress(FileNotFoundError):
                self._result_path(job_id).unlink()

    def delete(self, job_id: str) -> bool:
        """See :meth:`JobStore.delete`."""
        if not is_valid_job_id(job_id):
            return False
        with self._locked():
            existed = True
            try:
                self._record_path(job_id).unlink()
            except FileNotFoundError:
                existed = False
            self.delete_result(job_id)
            with contextlib.suppress(FileNotFoundError):
                self._tombstone_path(job_id).unlink()
        return existed

    def iter_ids(self) -> Iterator[str]:
        """See :meth:`JobStore.iter_ids`."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("*.json"):
            stem = path.name[: -len(".json")]
            if is_valid_job_id(stem):
                yield stem

    def ping(self) -> None:
        """See :meth:`JobStore.ping`: the directory must exist (or be creatable) and be
        writable."""
        self._ensure_root()
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreUnavailableError(f"the job directory {self.root} is not writable")

    # -- tombstones --------------------------------------------------------------------
    def is_expired(self, job_id: str) -> bool:
        """See :meth:`JobStore.is_expired`."""
        if not is_valid_job_id(job_id):
            return False
        try:
            age = time.time() - self._tombstone_path(job_id).stat().st_mtime
        except OSError:
            return False
        return age <= self.tombstone_ttl_s

    def purge(self) -> int:
        """Expire old records (reading them does) and drop old tombstones and keys."""
        removed = 0
        for job_id in list(self.iter_ids()):
            if self.get(job_id) is None:
                removed += 1
        if not self.root.is_dir():
            return removed
        now = time.time()
        for marker in self.root.glob("*.expired"):
            with contextlib.suppress(OSError):
                if now - marker.stat().st_mtime > self.tombstone_ttl_s:
                    marker.unlink()
                    removed += 1
        for path in (self.root / "idem").glob("*.json"):
            data = self._read_json(path)
            if not isinstance(data, dict) or float(data.get("expires", 0)) < now:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
        return removed

    # -- idempotency -------------------------------------------------------------------
    def claim_idempotency(self, scope: str, job_id: str, ttl_s: int) -> str | None:
        """See :meth:`JobStore.claim_idempotency`."""
        path = self._idem_path(scope)
        with self._locked():
            data = self._read_json(path)
            if isinstance(data, dict) and float(data.get("expires", 0)) > time.time():
                return str(data.get("job_id"))
            payload = {"job_id": job_id, "expires": time.time() + ttl_s}
            self._write_atomic(path, json.dumps(payload))
        return None

    def release_idempotency(self, scope: str, job_id: str) -> None:
        """See :meth:`JobStore.release_idempotency`."""
        path = self._idem_path(scope)
        with self._locked():
            data = self._read_json(path)
            if isinstance(data, dict) and data.get("job_id") == job_id:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    # -- slots -------------------------------------------------------------------------
    def _slot_members(self, owner: str) -> dict[str, float]:
        data = self._read_json(self._slots_path(owner))
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _slot_add(self, owner: str, job_id: str, now: float) -> int:
        with self._locked():
            members = self._slot_members(owner)
            members[job_id] = now
            self._write_atomic(self._slots_path(owner), json.dumps(members))
        return len(members)

    def release_slot(self, owner: str, job_id: str) -> None:
        """See :meth:`JobStore.release_slot`."""
        with self._locked():
            members = self._slot_members(owner)
            if members.pop(job_id, None) is not None:
                self._write_atomic(self._slots_path(owner), json.dumps(members))

    # -- run slots ---------------------------------------------------------------------
    def _run_slots_path(self, owner: str) -> Path:
        return self.root / "running" / f"{scope_digest(owner)}.json"

    def _live_run_slots(self, owner: str, now: float) -> dict[str, float]:
        data = self._read_json(self._run_slots_path(owner))
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if float(v) > now}

    def acquire_run_slot(self, owner: str, job_id: str, limit: int, lease_s: float) -> bool:
        """See :meth:`JobStore.acquire_run_slot` (``running/<sha256>.json``, locked)."""
        now = time.time()
        with self._locked():
            slots = self._live_run_slots(owner, now)
            if job_id not in slots and len(slots) >= limit:
                return False
            slots[job_id] = now + lease_s
            self._write_atomic(self._run_slots_path(owner), json.dumps(slots))
        return True

    def renew_run_slot(self, owner: str, job_id: str, lease_s: float) -> None:
        """See :meth:`JobStore.renew_run_slot`."""
        now = time.time()
        with self._locked():
            slots = self._live_run_slots(owner, now)
            if job_id in slots:
                slots[job_id] = now + lease_s
                self._write_atomic(self._run_slots_path(owner), json.dumps(slots))

    def release_run_slot(self, owner: str, job_id: str) -> None:
        """See :meth:`JobStore.release_run_slot`."""
        with self._locked():
            slots = self._live_run_slots(owner, time.time())
            slots.pop(job_id, None)
            self._write_atomic(self._run_slots_path(owner), json.dumps(slots))


# --------------------------------------------------------------------------------------
# Redis store
# --------------------------------------------------------------------------------------

# KEYS[1] = record hash. ARGV[1] = JSON array of allowed encoded states ("" = any),
# ARGV[2] = JSON object {field: encoded value} that must match ("" = none),
# ARGV[3..] = field, value, field, value ...
_UPDATE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then
  local state = redis.call('HGET', KEYS[1], 'state')
  local ok = false
  for _, s in ipairs(cjson.decode(ARGV[1])) do
    if s == state then ok = true end
  end
  if not ok then return 0 end
end
if ARGV[2] ~= '' then
  for f, v in pairs(cjson.decode(ARGV[2])) do
    if redis.call('HGET', KEYS[1], f) ~= v then return 0 end
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
"""

# KEYS[1] = idempotency key. ARGV[1] = job id. Delete only if still bound to it.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] = owner's running sorted set (member: job id, score: lease end, epoch s).
# ARGV[1] = job id, ARGV[2] = limit, ARGV[3] = now, ARGV[4] = lease end, ARGV[5] = key TTL.
_ACQUIRE_RUN_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

P = ParamSpec("P")
R = TypeVar("R")


def _redis_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`redis.RedisError` into :class:`StoreUnavailableError`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnavailableError(
                f"the job store (Redis) is unavailable: {exc.__class__.__name__}"
            ) from exc

    return wrapper


class RedisJobStore(JobStore):
    """One Redis hash per job (``<prefix><id>``), result JSON in ``<prefix><id>:result``.

    Each hash field holds the JSON encoding of the matching :class:`JobRecord` field.
    Both keys expire ``ttl_s`` seconds after the job was created; the tombstone
    ``<prefix><id>:expires`` outlives them by ``tombstone_ttl_s``. Bookkeeping keys start
    with ``<base>`` (``mer:``): ``idem:<sha256>``, ``owner:<sha256>:jobs`` (a sorted set),
    ``owner:<sha256>:running`` (run slots, scored by lease end), ``stats:outcomes`` and
    ``stats:stages`` (hashes shared by every worker).
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        ttl_s: int,
        prefix: str = "mer:job:",
        tombstone_ttl_s: int = 30 * 24 * 3600,
        base: str = "mer:",
    ) -> None:
        """Connect lazily to ``url``; keys start with ``prefix`` and live ``ttl_s`` s."""
        self.client: redis.Redis = redis.Redis.from_url(
            url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
        )
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.tombstone_ttl_s = tombstone_ttl_s
        self.base = base
        self._update_script = self.client.register_script(_UPDATE_LUA)
        self._release_script = self.client.register_script(_RELEASE_LUA)
        self._acquire_run_script = self.client.register_script(_ACQUIRE_RUN_LUA)

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}"

    def _result_key(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}:result"

    def _tombstone_key(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}:expires"

    @staticmethod
    def _encode(data: dict[str, Any]) -> dict[str, str]:
        return {k: json.dumps(v) for k, v in data.items()}

    @_redis_errors
    def create(self, record: JobRecord) -> None:
        """See :meth:`JobStore.create`."""
        if not is_valid_job_id(record.id):
            raise ValueError(f"malformed job id {record.id!r}")
        key = self._key(record.id)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=self._encode(record.model_dump(mode="json")))
        pipe.expire(key, self.ttl_s)
        if self.tombstone_ttl_s > 0:
            pipe.set(self._tombstone_key(record.id), "1", ex=self.ttl_s + self.tombstone_ttl_s)
        pipe.execute()

    @_redis_errors
    def get(self, job_id: str) -> JobRecord | None:
        """See :meth:`JobStore.get`."""
        if not is_valid_job_id(job_id):
            return None
        raw = self.client.hgetall(self._key(job_id))
        if not raw:
            return None
        try:
            data = {k.decode(): json.loads(v) for k, v in raw.items()}
            return JobRecord.model_validate(data)
        except (ValueError, ValidationError):
            return None

    @_redis_errors
    def update(
        self,
        job_id: str,
        *,
        only_if_state: Collection[JobState] | None = None,
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        """See :meth:`JobStore.update` (one atomic Lua script)."""
        encoded = self._encode(_encode_changes(changes))
        expected = self._encode(_encode_expect(expect))
        if not is_valid_job_id(job_id):
            return False
        allowed = ""
        if only_if_state is not None:
            allowed = json.dumps([json.dumps(JobState(s).value) for s in only_if_state])
        args: list[str] = [allowed, json.dumps(expected) if expected else ""]
        for field, value in encoded.items():
            args += [field, value]
        return bool(self._update_script(keys=[self._key(job_id)], args=args))

    @_redis_errors
    def set_result(self, job_id: str, result_json: str) -> None:
        """See :meth:`JobStore.set_result`."""
        if not is_valid_job_id(job_id):
            raise ValueError(f"malformed job id {job_id!r}")
        ttl = self.client.ttl(self._key(job_id))
        self.client.set(self._result_key(job_id), result_json, ex=ttl if ttl > 0 else self.ttl_s)

    @_redis_errors
    def get_result(self, job_id: str) -> str | None:
        """See :meth:`JobStore.get_result`."""
        if not is_valid_job_id(job_id):
            return None
        raw = self.client.get(self._result_key(job_id))
        return None if raw is None else raw.decode("utf-8")

    @_redis_errors
    def delete_result(self, job_id: str) -> None:
        """See :meth:`JobStore.delete_result`."""
        if is_valid_job_id(job_id):
            self.client.delete(self._result_key(job_id))

    @_redis_errors
    def delete(self, job_id: str) -> bool:
        """See :meth:`JobStore.delete`."""
        if not is_valid_job_id(job_id):
            return False
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self._key(job_id), self._result_key(job_id))
        pipe.delete(self._tombstone_key(job_id))
        return bool(pipe.execute()[0])

    @_redis_errors
    def iter_ids(self) -> Iterator[str]:
        """See :meth:`JobStore.iter_ids`."""
        for key in self.client.scan_iter(match=f"{self.prefix}*", count=500):
            job_id = key.decode()[len(self.prefix) :]
            if is_valid_job_id(job_id):
                yield job_id

    @_redis_errors
    def ping(self) -> None:
        """See :meth:`JobStore.ping`."""
        self.client.ping()

    @_redis_errors
    def is_expired(self, job_id: str) -> bool:
        """See :meth:`JobStore.is_expired`: the tombstone outlives the record."""
        if not is_valid_job_id(job_id):
            return False
        key, tomb = self._key(job_id), self._tombstone_key(job_id)
        return bool(self.client.exists(tomb)) and not self.client.exists(key)

    @_redis_errors
    def claim_idempotency(self, scope: str, job_id: str, ttl_s: int) -> str | None:
        """See :meth:`JobStore.claim_idempotency` (``SET NX``)."""
        key = f"{self.base}idem:{scope_digest(scope)}"
        for _ in range(3):
            if self.client.set(key, job_id, nx=True, ex=max(1, ttl_s)):
                return None
            bound = self.client.get(key)
            if bound is not None:
                return bound.decode()
        raise StoreUnavailableError("could not claim the idempotency key")

    @_redis_errors
    def release_idempotency(self, scope: str, job_id: str) -> None:
        """See :meth:`JobStore.release_idempotency` (compare-and-delete)."""
        self._release_script(keys=[f"{self.base}idem:{scope_digest(scope)}"], args=[job_id])

    def _slots_key(self, owner: str) -> str:
        return f"{self.base}owner:{scope_digest(owner)}:jobs"

    @_redis_errors
    def _slot_members(self, owner: str) -> dict[str, float]:
        rows = self.client.zrange(self._slots_key(owner), 0, -1, withscores=True)
        return {m.decode(): float(score) for m, score in rows}

    @_redis_errors
    def _slot_add(self, owner: str, job_id: str, now: float) -> int:
        key = self._slots_key(owner)
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(key, {job_id: now})
        pipe.expire(key, self.ttl_s)
        pipe.zcard(key)
        return int(pipe.execute()[-1])

    @_redis_errors
    def release_slot(self, owner: str, job_id: str) -> None:
        """See :meth:`JobStore.release_slot`."""
        self.client.zrem(self._slots_key(owner), job_id)

    def _run_slots_key(self, owner: str) -> str:
        return f"{self.base}owner:{scope_digest(owner)}:running"

    @_redis_errors
    def acquire_run_slot(self, owner: str, job_id: str, limit: int, lease_s: float) -> bool:
        """See :meth:`JobStore.acquire_run_slot` (one Lua script on a sorted set)."""
        now = time.time()
        ttl = max(1, math.ceil(lease_s * 2))
        args = [job_id, limit, now, now + lease_s, ttl]
        return bool(self._acquire_run_script(keys=[self._run_slots_key(owner)], args=args))

    @_redis_errors
    def renew_run_slot(self, owner: str, job_id: str, lease_s: float) -> None:
        """See :meth:`JobStore.renew_run_slot` (``ZADD XX``)."""
        key = self._run_slots_key(owner)
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(key, {job_id: time.time() + lease_s}, xx=True)
        pipe.expire(key, max(1, math.ceil(lease_s * 2)))
        pipe.execute()

    @_redis_errors
    def release_run_slot(self, owner: str, job_id: str) -> None:
        """See :meth:`JobStore.release_run_slot`."""
        self.client.zrem(self._run_slots_key(owner), job_id)

    def record_outcome(
        self, state: str, code: str | None, timings_ms: Mapping[str, float] | None = None
    ) -> None:
        """See :meth:`JobStore.record_outcome`: counters in Redis, shared by all workers."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hincrby(f"{self.base}stats:outcomes", f"{state}|{code or ''}", 1)
            stages = f"{self.base}stats:stages"
            for stage, ms in (timings_ms or {}).items():
                seconds = float(ms) / 1000.0
                pipe.hincrby(stages, f"{stage}|{bucket_index(seconds)}", 1)
                pipe.hincrbyfloat(stages, f"{stage}|sum", seconds)
            pipe.execute()
        except redis.RedisError:
            logger_store.warning("could not record a job outcome in Redis", exc_info=True)

    @_redis_errors
    def read_stats(self) -> JobStats:
        """See :meth:`JobStore.read_stats`."""
        stats = JobStats()
        for field, value in self.client.hgetall(f"{self.base}stats:outcomes").items():
            state, _, code = field.decode().partition("|")
            stats.outcomes[(state, code)] = int(value)
        for field, value in self.client.hgetall(f"{self.base}stats:stages").items():
            stage, _, what = field.decode().rpartition("|")
            if what == "sum":
                stats.stage_sum_s[stage] = float(value)
            elif what.isdigit() and int(what) <= len(STAGE_BUCKETS_S):
                buckets = stats.stage_buckets.setdefault(stage, [0] * (len(STAGE_BUCKETS_S) + 1))
                buckets[int(what)] = int(value)
        return stats

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def make_job_store(settings: Settings) -> JobStore:
    """The store the settings ask for: Redis when ``effective_redis_url`` is set, else
    files under ``data_dir/jobs``."""
    url = settings.effective_redis_url
    if url:
        return RedisJobStore(
            url, ttl_s=settings.job_ttl_s, tombstone_ttl_s=settings.tombstone_ttl_s
        )
    return FileJobStore(
        Path(settings.data_dir) / "jobs",
        ttl_s=settings.job_ttl_s,
        tombstone_ttl_s=settings.tombstone_ttl_s,
    )


__all__ = [
    "ACTIVE_STATES",
    "ANONYMOUS_OWNER",
    "TERMINAL_STATES",
    "FileJobStore",
    "JobProgress",
    "JobRecord",
    "JobState",
    "JobStats",
    "JobStore",
    "RedisJobStore",
    "is_valid_job_id",
    "make_job_store",
    "new_job_id",
    "quota_owner",
    "WebhookDelivery",
]
