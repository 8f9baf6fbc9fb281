"""The Redis job store: one hash per job, the result JSON in its own key.

Both keys expire after ``job_ttl_s``. Conditional updates, idempotency releases and run
slot acquisitions each run as one Lua script, so they are atomic across every API process
and worker. Outcome statistics are Redis hashes shared by all workers (see
:mod:`workers.jobstore.metrics` for why not prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, ParamSpec, TypeVar

import redis
from pydantic import ValidationError

from workers.errors import StoreUnavailableError
from workers.jobstore.base import JobStore
from workers.jobstore.metrics import STAGE_BUCKETS_S, JobStats, bucket_index
from workers.jobstore.model import (
    JobRecord,
    JobState,
    RecordUpdate,
    is_valid_job_id,
    scope_digest,
)

logger = logging.getLogger(__name__)

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


#: bytes buffered before each APPEND of :meth:`RedisJobStore.write_result`
RESULT_APPEND_BYTES = 1 << 20


class _AppendSink:
    """A write-only binary stream that APPENDs to a Redis key in blocks of ``block`` bytes
    (the temporary key expires after an hour if the writer dies)."""

    def __init__(self, client: Any, key: str, block: int) -> None:
        self.client, self.key, self.block = client, key, block
        self.buf = bytearray()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.buf += data
        if len(self.buf) >= self.block:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            pipe = self.client.pipeline(transaction=False)
            pipe.append(self.key, bytes(self.buf))
            pipe.expire(self.key, 3600)
            pipe.execute()
            self.size += len(self.buf)
            self.buf.clear()


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
    def _apply(self, job_id: str, update: RecordUpdate) -> bool:
        """See :meth:`JobStore.update` (one atomic Lua script)."""
        expected, encoded = self._encode(update.expected), self._encode(update.changes)
        allowed = ""
        if update.only_if_state is not None:
            states = [json.dumps(JobState(s).value) for s in update.only_if_state]
            allowed = json.dumps(states)
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
    def write_result(self, job_id: str, write: Callable[[BinaryIO], object]) -> None:
        """See :meth:`JobStore.write_result`: appended to a temporary key
        :data:`RESULT_APPEND_BYTES` at a time, then renamed onto the result key (readers
        never see a partial result)."""
        if not is_valid_job_id(job_id):
            raise ValueError(f"malformed job id {job_id!r}")
        ttl = self.client.ttl(self._key(job_id))
        tmp = f"{self._result_key(job_id)}:partial:{uuid.uuid4().hex}"
        sink = _AppendSink(self.client, tmp, RESULT_APPEND_BYTES)
        try:
            write(sink)
            sink.flush()
            pipe = self.client.pipeline(transaction=True)
            if sink.size == 0:
                pipe.set(tmp, b"")
            pipe.rename(tmp, self._result_key(job_id))
            pipe.expire(self._result_key(job_id), ttl if ttl > 0 else self.ttl_s)
            pipe.execute()
        except BaseException:
            self.client.delete(tmp)
            raise

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
            logger.warning("could not record a job outcome in Redis", exc_info=True)

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
