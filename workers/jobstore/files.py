"""The file job store (the default): one JSON file per job under ``data_dir/jobs/``.

Every file is written atomically (temporary file, ``fsync``, :func:`os.replace`), so
restarting the API loses nothing. Read-modify-write cycles hold a store-wide
:class:`filelock.FileLock`, so threads and processes sharing the directory do not lose
each other's updates.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from filelock import FileLock
from pydantic import ValidationError

from workers.errors import StoreUnavailableError
from workers.jobstore.base import JobStore
from workers.jobstore.model import (
    JobRecord,
    RecordUpdate,
    is_valid_job_id,
    scope_digest,
    utcnow,
)


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
        # an OS lock on <root>/.lock; per thread (thread_local), so threads exclude
        # each other as processes do
        self._lock = FileLock(self.root / ".lock")

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
        with self._lock:
            yield

    def _write_atomic(self, path: Path, text: str | Callable[[BinaryIO], object]) -> None:
        """Write ``text`` (or what the callable writes to the binary file) to ``path``
        through a temporary file and an atomic rename."""
        self._ensure_root()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "wb") as fh:
                    if callable(text):
                        text(fh)
                    else:
                        fh.write(text.encode("utf-8"))
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

    def _apply(self, job_id: str, update: RecordUpdate) -> bool:
        """See :meth:`JobStore.update` (read-modify-write under the store lock)."""
        with self._locked():
            record = self._read(job_id)
            if record is None:
                return False
            if update.only_if_state is not None and record.state not in update.only_if_state:
                return False
            data = record.model_dump(mode="json")
            if any(data.get(k) != v for k, v in update.expected.items()):
                return False
            data.update(update.changes)
            new = JobRecord.model_validate(data)
            self._write_atomic(self._record_path(job_id), new.model_dump_json())
        return True

    def set_result(self, job_id: str, result_json: str) -> None:
        """See :meth:`JobStore.set_result`."""
        if not is_valid_job_id(job_id):
            raise ValueError(f"malformed job id {job_id!r}")
        self._write_atomic(self._result_path(job_id), result_json)

    def write_result(self, job_id: str, write: Callable[[BinaryIO], object]) -> None:
        """See :meth:`JobStore.write_result`: streamed into the result file."""
        if not is_valid_job_id(job_id):
            raise ValueError(f"malformed job id {job_id!r}")
        self._write_atomic(self._result_path(job_id), write)

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
