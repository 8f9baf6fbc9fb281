"""JobStore contract, run against both stores (the Redis one against a real Redis)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mer.schemas import ErrorInfo
from workers.jobstore import (
    FileJobStore,
    JobProgress,
    JobRecord,
    JobState,
    JobStore,
    RedisJobStore,
    make_job_store,
    new_job_id,
    utcnow,
)


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    """A fresh store of each kind."""
    if request.param == "file":
        s: JobStore = FileJobStore(tmp_path / "jobs", ttl_s=3600)
    else:
        url = request.getfixturevalue("redis_url")
        s = RedisJobStore(url, ttl_s=3600)
    yield s
    s.close()


def _record(**kw: object) -> JobRecord:
    return JobRecord(id=new_job_id(), filename="a.mp4", upload_path="/tmp/x/input.mp4", **kw)


def test_create_get_roundtrip(store: JobStore) -> None:
    rec = _record()
    store.create(rec)
    got = store.get(rec.id)
    assert got == rec
    assert got.state == JobState.QUEUED and got.progress == JobProgress()


def test_unknown_and_malformed_ids(store: JobStore) -> None:
    assert store.get(new_job_id()) is None
    for bad in ("../../etc/passwd", "", "X" * 32, "abc", "0" * 31 + "/"):
        assert store.get(bad) is None
        assert store.update(bad, state=JobState.FAILED) is False
        assert store.get_result(bad) is None
        assert store.delete(bad) is False
    with pytest.raises(ValueError):
        store.create(JobRecord(id="../evil", filename="a", upload_path="/x"))


def test_update_fields_and_timestamp(store: JobStore) -> None:
    rec = _record()
    store.create(rec)
    assert store.update(
        rec.id,
        state=JobState.RUNNING,
        progress=JobProgress(stage="au", percent=42.5),
        attempts=1,
    )
    got = store.get(rec.id)
    assert got is not None
    assert got.state == JobState.RUNNING
    assert got.progress.stage == "au" and got.progress.percent == 42.5
    assert got.attempts == 1
    assert got.updated_at >= rec.updated_at
    assert got.created_at == rec.created_at
    with pytest.raises(ValueError):
        store.update(rec.id, id="other")


def test_conditional_update(store: JobStore) -> None:
    rec = _record()
    store.create(rec)
    assert not store.update(rec.id, only_if_state={JobState.RUNNING}, state=JobState.SUCCEEDED)
    assert store.get(rec.id).state == JobState.QUEUED
    assert store.update(rec.id, only_if_state={JobState.QUEUED}, state=JobState.RUNNING)
    err = ErrorInfo(code="no_face_detected", message="none")
    assert store.update(rec.id, only_if_state=[JobState.RUNNING], state=JobState.FAILED, error=err)
    got = store.get(rec.id)
    assert got.state == JobState.FAILED and got.error == err
    # the record is gone: nothing is (re)created
    store.delete(rec.id)
    assert not store.update(rec.id, state=JobState.RUNNING)
    assert store.get(rec.id) is None


def test_request_cancel(store: JobStore) -> None:
    queued, running, done = _record(), _record(), _record()
    for r in (queued, running, done):
        store.create(r)
    store.update(running.id, state=JobState.RUNNING)
    store.update(done.id, state=JobState.SUCCEEDED)

    q = store.request_cancel(queued.id)
    assert q.state == JobState.CANCELLED and q.cancel_requested
    assert q.error is not None and q.error.code == "job_cancelled"
    r = store.request_cancel(running.id)
    assert r.state == JobState.RUNNING and r.cancel_requested
    d = store.request_cancel(done.id)
    assert d.state == JobState.SUCCEEDED and not d.cancel_requested
    assert store.request_cancel(new_job_id()) is None


def test_result_and_delete(store: JobStore) -> None:
    rec = _record()
    store.create(rec)
    assert store.get_result(rec.id) is None
    store.set_result(rec.id, '{"x": 1}')
    assert store.get_result(rec.id) == '{"x": 1}'
    store.delete_result(rec.id)
    assert store.get_result(rec.id) is None
    store.set_result(rec.id, '{"x": 2}')
    assert store.delete(rec.id) is True
    assert store.get(rec.id) is None and store.get_result(rec.id) is None
    assert store.delete(rec.id) is False


def test_iter_ids_and_ping(store: JobStore) -> None:
    ids = set()
    for _ in range(3):
        rec = _record()
        store.create(rec)
        store.set_result(rec.id, "{}")
        ids.add(rec.id)
    assert set(store.iter_ids()) == ids
    store.ping()


def test_concurrent_updates_lose_nothing(store: JobStore) -> None:
    """Progress writes from a worker never undo the owner's cancel flag."""
    rec = _record()
    store.create(rec)
    store.update(rec.id, state=JobState.RUNNING)
    stop = threading.Event()

    def worker() -> None:
        i = 0
        while not stop.is_set():
            store.update(
                rec.id,
                only_if_state={JobState.RUNNING},
                progress=JobProgress(stage="au", percent=i % 100),
            )
            i += 1

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        store.request_cancel(rec.id)
        for _ in range(20):
            assert store.get(rec.id).cancel_requested
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert store.get(rec.id).cancel_requested


def test_file_store_survives_restart_and_is_atomic(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    rec = _record()
    FileJobStore(root, ttl_s=3600).create(rec)
    again = FileJobStore(root, ttl_s=3600)
    assert again.get(rec.id) == rec
    assert not list(root.glob(".tmp-*")), "temporary files left behind"
    assert (root / f"{rec.id}.json").is_file()


def test_file_store_expires_records(tmp_path: Path) -> None:
    store = FileJobStore(tmp_path / "jobs", ttl_s=60)
    old = _record(created_at=utcnow() - timedelta(seconds=120))
    store.create(old)
    store.set_result(old.id, "{}")
    assert store.get(old.id) is None
    assert not (tmp_path / "jobs" / f"{old.id}.json").exists()
    assert store.get_result(old.id) is None


def test_file_store_ignores_corrupt_record(tmp_path: Path) -> None:
    store = FileJobStore(tmp_path / "jobs", ttl_s=60)
    job_id = new_job_id()
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / f"{job_id}.json").write_text("{not json")
    assert store.get(job_id) is None


@pytest.mark.redis
def test_redis_store_sets_ttl(redis_url: str) -> None:
    store = RedisJobStore(redis_url, ttl_s=1000)
    rec = _record()
    store.create(rec)
    store.set_result(rec.id, "{}")
    store.update(rec.id, state=JobState.RUNNING)
    assert 0 < store.client.ttl(f"mer:job:{rec.id}") <= 1000
    assert 0 < store.client.ttl(f"mer:job:{rec.id}:result") <= 1000
    store.close()


def test_redis_store_unreachable_raises_store_unavailable() -> None:
    from workers.errors import StoreUnavailableError

    store = RedisJobStore("redis://127.0.0.1:1/0", ttl_s=10)
    with pytest.raises(StoreUnavailableError):
        store.ping()
    with pytest.raises(StoreUnavailableError):
        store.get(new_job_id())


def test_make_job_store_choice(tmp_path: Path) -> None:
    from workers.settings import WorkerSettings

    s = WorkerSettings(_env_file=None, data_dir=tmp_path, broker_url=None, redis_url=None)
    assert isinstance(make_job_store(s), FileJobStore)
    s = WorkerSettings(_env_file=None, data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/15")
    assert isinstance(make_job_store(s), RedisJobStore)
    s = WorkerSettings(_env_file=None, data_dir=tmp_path, broker_url="amqp://localhost//")
    assert isinstance(make_job_store(s), FileJobStore)


# -- compare-and-set, tombstones, idempotency keys, slots, statistics ----------------------


def test_expect_is_a_compare_and_set(store: JobStore) -> None:
    rec = _record()
    store.create(rec)
    assert store.update(rec.id, expect={"attempts": 0}, attempts=1, worker="h:1")
    assert not store.update(rec.id, expect={"attempts": 0}, attempts=1, worker="h:2")
    got = store.get(rec.id)
    assert got.attempts == 1 and got.worker == "h:1"
    assert store.update(
        rec.id, only_if_state={JobState.QUEUED}, expect={"attempts": 1, "worker": "h:1"}, attempts=2
    )
    with pytest.raises(ValueError):
        store.update(rec.id, expect={"nope": 1}, attempts=3)


def test_tombstone_tells_expired_from_deleted(store: JobStore) -> None:
    kept, deleted = _record(), _record()
    store.create(kept)
    store.create(deleted)
    assert not store.is_expired(kept.id)
    store.delete(deleted.id)
    assert not store.is_expired(deleted.id)  # deleted by its owner: plain 404
    assert not store.is_expired(new_job_id()) and not store.is_expired("../x")


def test_expiry_leaves_a_tombstone_file_store(tmp_path: Path) -> None:
    store = FileJobStore(tmp_path / "jobs", ttl_s=60, tombstone_ttl_s=3600)
    old = _record(created_at=utcnow() - timedelta(seconds=120))
    store.create(old)
    assert store.get(old.id) is None
    assert store.is_expired(old.id)
    gone = FileJobStore(tmp_path / "jobs", ttl_s=60, tombstone_ttl_s=0)
    assert not gone.is_expired(old.id)
    assert gone.purge() >= 1 and not (tmp_path / "jobs" / f"{old.id}.expired").exists()


@pytest.mark.redis
def test_expiry_leaves_a_tombstone_redis(redis_url: str) -> None:
    import time

    store = RedisJobStore(redis_url, ttl_s=1, tombstone_ttl_s=60)
    rec = _record()
    store.create(rec)
    time.sleep(2.1)
    assert store.get(rec.id) is None and store.is_expired(rec.id)


def test_idempotency_keys(store: JobStore) -> None:
    a, b = new_job_id(), new_job_id()
    assert store.claim_idempotency("alice\x00k1", a, 60) is None
    assert store.claim_idempotency("alice\x00k1", b, 60) == a
    assert store.claim_idempotency("bob\x00k1", b, 60) is None
    store.release_idempotency("alice\x00k1", b)  # not bound to b: kept
    assert store.claim_idempotency("alice\x00k1", b, 60) == a
    store.release_idempotency("alice\x00k1", a)
    assert store.claim_idempotency("alice\x00k1", b, 60) is None


def test_slots_count_only_active_jobs(store: JobStore) -> None:
    recs = [_record() for _ in range(3)]
    for r in recs:
        store.create(r)
    assert store.reserve_slot("alice", recs[0].id, limit=2)
    assert store.reserve_slot("alice", recs[1].id, limit=2)
    assert not store.reserve_slot("alice", recs[2].id, limit=2)
    assert store.active_slots("alice") == 2
    assert store.reserve_slot("bob", recs[2].id, limit=2)
    store.update(recs[0].id, state=JobState.SUCCEEDED)  # a finished job frees its slot
    assert store.reserve_slot("alice", recs[2].id, limit=2)
    pending = new_job_id()  # an upload still arriving (no record yet) holds its slot...
    store.release_slot("alice", recs[2].id)
    assert store.reserve_slot("alice", pending, limit=2)
    assert store.active_slots("alice") == 2
    assert store.active_slots("alice", grace_s=0) == 1  # ...until its grace period ends


def test_outcome_statistics(store: JobStore) -> None:
    store.record_outcome("succeeded", None, {"landmarks": 1500.0, "total": 2000.0})
    store.record_outcome("succeeded", None, {"landmarks": 20.0})
    store.record_outcome("failed", "no_face_detected")
    stats = store.read_stats()
    assert stats.outcomes[("succeeded", "")] == 2
    assert stats.outcomes[("failed", "no_face_detected")] == 1
    assert sum(stats.stage_buckets["landmarks"]) == 2
    assert stats.stage_sum_s["landmarks"] == pytest.approx(1.52)


def test_a_result_streamed_into_the_store_reads_back_whole(store: JobStore) -> None:
    # the worker writes a long video's result JSON a chunk at a time (CompactResult.
    # write_json): the stored document is the concatenation, and readers never see a part
    from workers.jobstore.redis_store import RESULT_APPEND_BYTES

    job = _record()
    store.create(job)
    parts = [b'{"frames": [', *(b"%d," % i for i in range(400_000)), b"0]}"]
    expected = b"".join(parts).decode()
    assert len(expected) > 2 * RESULT_APPEND_BYTES  # several appends

    def write(fh):
        for p in parts:
            fh.write(p)

    store.write_result(job.id, write)
    assert store.get_result(job.id) == expected
    store.write_result(job.id, lambda fh: fh.write(b"{}"))  # replaced, not appended
    assert store.get_result(job.id) == "{}"

    def broken(fh):
        fh.write(b'{"partial": ')
        raise RuntimeError("the writer died")

    with pytest.raises(RuntimeError):
        store.write_result(job.id, broken)
    assert store.get_result(job.id) == "{}"  # the previous result stands
