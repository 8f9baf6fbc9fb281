"""The store interface: what the API and the workers ask of a job store.

Updates are *conditional*: :meth:`JobStore.update` changes nothing when the record is gone
(deleted by its owner) or is not in one of the expected states, which is how a worker
that finishes after a cancel or a delete leaves the record alone. ``expect`` adds a
compare-and-set on other fields (the ``attempts`` counter is the run's lease token).

Besides records and results, a store keeps small bookkeeping shared by every API process
and worker: *tombstones* (an expired id answers 410, an unknown one 404), *idempotency
keys* (a replayed ``POST /v1/analyze`` returns the first job), *per-owner job slots* (the
backlog quota: queued + running jobs of a key), *per-owner run slots* (how many of a key's
jobs run at once; leases that a dead worker's heartbeat stops renewing) and *job outcome
statistics* (Prometheus metrics, :mod:`workers.jobstore.metrics`).
"""

from __future__ import annotations

import io
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, BinaryIO

from workers.jobstore.metrics import JobStats, MemoryJobMetrics
from workers.jobstore.model import (
    ACTIVE_STATES,
    JobProgress,
    JobRecord,
    JobState,
    RecordUpdate,
    cancelled_error,
    encode_changes,
    encode_expect,
    is_valid_job_id,
)


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

        Raises:
            ValueError: a field in ``changes`` or ``expect`` is not an updatable one.
        """
        update = RecordUpdate(only_if_state, encode_expect(expect), encode_changes(changes))
        return is_valid_job_id(job_id) and self._apply(job_id, update)

    @abstractmethod
    def _apply(self, job_id: str, update: RecordUpdate) -> bool:
        """:meth:`update` of a well-formed id, atomically; ``True`` if it was applied."""

    @abstractmethod
    def set_result(self, job_id: str, result_json: str) -> None:
        """Store the result JSON of a job (an :class:`~mer.schemas.AnalysisResult`)."""

    def write_result(self, job_id: str, write: Callable[[BinaryIO], object]) -> None:
        """Store a result JSON that ``write`` writes (UTF-8 bytes) to the binary stream it
        is given, a chunk at a time (:meth:`mer.pipeline.CompactResult.write_json`): the
        backends stream it into their storage without holding the whole document. This
        default collects it and calls :meth:`set_result`."""
        buf = io.BytesIO()
        write(buf)
        self.set_result(job_id, buf.getvalue().decode("utf-8"))

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
        ended = self.update(
            job_id,
            only_if_state={JobState.QUEUED},
            state=JobState.CANCELLED,
            cancel_requested=True,
            error=cancelled_error(),
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

    def _memory_stats(self) -> MemoryJobMetrics:
        stats = self.__dict__.get("_stats")
        if stats is None:
            stats = self.__dict__.setdefault("_stats", MemoryJobMetrics())
        return stats
