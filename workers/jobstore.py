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
that finishes after a cancel or a delete leaves the record alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import redis
from pydantic import BaseModel, Field, ValidationError

from mer.schemas import ErrorInfo
from mer.settings import Settings
from workers.errors import StoreUnavailableError

_JOB_ID_RE = re.compile(r"[0-9a-f]{32}")


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
        **changes: Any,
    ) -> bool:
        """Atomically change fields of an existing record.

        Args:
            job_id: the job.
            only_if_state: when given, change nothing unless the current state is in it.
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

    def request_cancel(self, job_id: str) -> JobRecord | None:
        """Ask for a job to stop and return the updated record (``None`` if unknown).

        A queued job becomes ``cancelled`` at once; a running one gets
        ``cancel_requested`` and stops at the worker's next poll; a finished one is
        left unchanged.
        """
        cancelled = ErrorInfo(code="job_cancelled", message="the job was cancelled")
        self.update(
            job_id,
            only_if_state={JobState.QUEUED},
            state=JobState.CANCELLED,
            cancel_requested=True,
            error=cancelled,
            progress=JobProgress(stage="cancelled", percent=0.0),
        )
        self.update(job_id, only_if_state={JobState.RUNNING}, cancel_requested=True)
        return self.get(job_id)


# --------------------------------------------------------------------------------------
# File store
# --------------------------------------------------------------------------------------


class FileJobStore(JobStore):
    """JSON files under ``<data_dir>/jobs/``: ``<id>.json`` and ``<id>.result.json``.

    Records older than ``ttl_s`` read as absent and are removed when read.
    """

    kind = "file"

    def __init__(self, root: Path, ttl_s: int) -> None:
        """Use ``root`` (created on first write) and expire records after ``ttl_s`` s."""
        self.root = Path(root)
        self.ttl_s = ttl_s

    # -- paths and primitives ----------------------------------------------------------
    def _record_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def _result_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.result.json"

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
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
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
            return None
        return record

    def update(
        self,
        job_id: str,
        *,
        only_if_state: Collection[JobState] | None = None,
        **changes: Any,
    ) -> bool:
        """See :meth:`JobStore.update`."""
        encoded = _encode_changes(changes)
        if not is_valid_job_id(job_id):
            return False
        with self._locked():
            record = self._read(job_id)
            if record is None:
                return False
            if only_if_state is not None and record.state not in only_if_state:
                return False
            data = record.model_dump(mode="json")
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


# --------------------------------------------------------------------------------------
# Redis store
# --------------------------------------------------------------------------------------

# KEYS[1] = record hash. ARGV[1] = JSON array of allowed encoded states ("" = any),
# ARGV[2..] = field, value, field, value ...
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
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
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
    Both keys expire ``ttl_s`` seconds after the job was created.
    """

    kind = "redis"

    def __init__(self, url: str, ttl_s: int, prefix: str = "mer:job:") -> None:
        """Connect lazily to ``url``; keys start with ``prefix`` and live ``ttl_s`` s."""
        self.client: redis.Redis = redis.Redis.from_url(
            url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
        )
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._update_script = self.client.register_script(_UPDATE_LUA)

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}"

    def _result_key(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}:result"

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
        **changes: Any,
    ) -> bool:
        """See :meth:`JobStore.update` (one atomic Lua script)."""
        encoded = self._encode(_encode_changes(changes))
        if not is_valid_job_id(job_id):
            return False
        allowed = ""
        if only_if_state is not None:
            allowed = json.dumps([json.dumps(JobState(s).value) for s in only_if_state])
        args: list[str] = [allowed]
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
        return bool(self.client.delete(self._key(job_id), self._result_key(job_id)))

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

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def make_job_store(settings: Settings) -> JobStore:
    """The store the settings ask for: Redis when ``effective_redis_url`` is set, else
    files under ``data_dir/jobs``."""
    url = settings.effective_redis_url
    if url:
        return RedisJobStore(url, ttl_s=settings.job_ttl_s)
    return FileJobStore(Path(settings.data_dir) / "jobs", ttl_s=settings.job_ttl_s)


__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "FileJobStore",
    "JobProgress",
    "JobRecord",
    "JobState",
    "JobStore",
    "RedisJobStore",
    "is_valid_job_id",
    "make_job_store",
    "new_job_id",
]
