"""Queueing: the per-key backlog (slots released when jobs end or are deleted), the
per-key limit on running jobs, and the lease reaper that requeues a dead worker's job.

The backlog tests run real clips through the API with the default settings (embedded
runner, file store, auth off), as a user would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import FakeAnalyzer, make_video, upload, wait_finished, wait_for

from service.auth import hash_key
from service.main import create_app
from service.settings import ServiceSettings
from workers import tasks
from workers.jobstore import (
    FileJobStore,
    JobRecord,
    JobState,
    JobStore,
    RedisJobStore,
    new_job_id,
    utcnow,
)
from workers.reaper import reap_expired_leases

OTHER_KEY = "mer_other_key_9876543210"


@pytest.fixture
def default_client(settings: ServiceSettings) -> Iterator[TestClient]:
    """The app with the default settings (embedded runner, file store, auth off)."""
    assert settings.max_queued_jobs_per_key == 100
    assert settings.max_concurrent_jobs_per_key == 4
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.mark.media
@pytest.mark.slow
def test_deleted_and_finished_jobs_release_their_slots(
    default_client: TestClient, single_face_video: Path
) -> None:
    """The product issue's leak: upload, wait for the end, DELETE; the fifth upload got
    429 too_many_jobs although nothing was queued or running."""
    c = default_client
    store = c.app.state.job_store
    for i in range(5):
        r = upload(c, single_face_video)
        assert r.status_code == 202, f"upload {i + 1}: {r.text}"
        job = wait_finished(c, r.json()["job_id"], timeout_s=180)
        assert job["state"] == "succeeded", job
        if i != 2:  # deleted jobs and finished (kept) jobs alike free their slot
            assert c.delete(f"/v1/jobs/{job['job_id']}").status_code == 204
        # nothing is queued or running: no slot may stay taken
        assert store.active_slots("anonymous") == 0, f"a slot leaked after job {i + 1}"


@pytest.mark.media
def test_batch_of_20_uploads_is_accepted_and_queues(
    default_client: TestClient, single_face_video: Path
) -> None:
    """A batch larger than the concurrency limit is accepted: the jobs wait their turn."""
    c = default_client
    ids = []
    for i in range(20):
        r = upload(c, single_face_video)
        assert r.status_code == 202, f"upload {i + 1} of 20: {r.text}"
        ids.append(r.json()["job_id"])
    states = [c.get(f"/v1/jobs/{job_id}").json()["state"] for job_id in ids]
    assert set(states) <= {"queued", "running", "succeeded"}, states
    assert states.count("queued") >= 15, states  # one embedded worker: the rest wait
    for job_id in ids:  # clean up: cancel and delete the backlog
        assert c.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert c.app.state.job_store.active_slots("anonymous") == 0


def test_backlog_full_answers_429(settings: ServiceSettings, tmp_path: Path, monkeypatch) -> None:
    fake = FakeAnalyzer(mode="block")
    monkeypatch.setattr(tasks, "load_analyzer", lambda: fake)
    video = make_video(tmp_path / "tiny.mp4")
    s = settings.model_copy(update={"max_queued_jobs_per_key": 3})
    with TestClient(create_app(s)) as c:
        ids = [upload(c, video).json()["job_id"] for _ in range(3)]
        r = upload(c, video)
        assert r.status_code == 429 and r.json()["code"] == "too_many_jobs", r.text
        assert "backlog" in r.json()["message"] and r.headers["retry-after"] == "5"
        assert c.delete(f"/v1/jobs/{ids[-1]}").status_code == 204  # frees one slot at once
        assert upload(c, video).status_code == 202
        fake.release.set()


def test_per_key_concurrency_limit_holds(
    auth_settings: ServiceSettings, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three worker threads, a limit of one running job per key: a key's three jobs run
    one after another while another key's job runs beside them."""
    fake = FakeAnalyzer(mode="block")
    monkeypatch.setattr(tasks, "load_analyzer", lambda: fake)
    video = make_video(tmp_path / "tiny.mp4")
    keys = f"{auth_settings.api_keys},other:{hash_key(OTHER_KEY)}"
    s = auth_settings.model_copy(
        update={"api_keys": keys, "embedded_workers": 3, "max_concurrent_jobs_per_key": 1}
    )
    mine, theirs = {"X-API-Key": api_key}, {"X-API-Key": OTHER_KEY}
    with TestClient(create_app(s), headers=mine) as c:
        ids = []
        for _ in range(3):
            r = c.post("/v1/analyze", files={"file": ("t.mp4", video.read_bytes())}, headers=mine)
            assert r.status_code == 202, r.text
            ids.append(r.json()["job_id"])
        r = c.post("/v1/analyze", files={"file": ("t.mp4", video.read_bytes())}, headers=theirs)
        other = r.json()["job_id"]

        def states() -> dict[str, object]:
            got = [c.get(f"/v1/jobs/{j}", headers=mine).json()["state"] for j in ids]
            return {"mine": got, "other": c.get(f"/v1/jobs/{other}", headers=theirs).json()}

        wait_for(states, lambda x: x["other"]["state"] == "running", timeout_s=30)
        deadline = time.monotonic() + 4  # several retry rounds of the waiting jobs
        while time.monotonic() < deadline:
            now = states()["mine"]
            assert now.count("running") == 1 and now.count("queued") == 2, now
            time.sleep(0.2)
        fake.release.set()
        for job_id in ids:
            assert wait_finished(c, job_id, timeout_s=60)["state"] == "succeeded"
        assert c.get(f"/v1/jobs/{other}", headers=theirs).json()["state"] == "succeeded"
        assert len(fake.calls_in(s.data_dir)) == 4, fake.calls  # every job ran exactly once


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> JobStore:
    if request.param == "file":
        return FileJobStore(tmp_path / "jobs", ttl_s=3600)
    return RedisJobStore(request.getfixturevalue("redis_url"), ttl_s=3600)


def test_run_slots_are_leases(store: JobStore) -> None:
    a, b, c = new_job_id(), new_job_id(), new_job_id()
    assert store.acquire_run_slot("k", a, 2, lease_s=60)
    assert store.acquire_run_slot("k", b, 2, lease_s=0.5)
    assert not store.acquire_run_slot("k", c, 2, lease_s=60)
    assert store.acquire_run_slot("other", c, 2, lease_s=60)  # per key
    assert store.acquire_run_slot("k", a, 2, lease_s=60)  # a holder keeps its slot
    time.sleep(0.7)  # b's lease ran out (its worker died): the slot is free
    assert store.acquire_run_slot("k", c, 2, lease_s=60)
    store.release_run_slot("k", a)
    assert store.acquire_run_slot("k", b, 2, lease_s=60)
    store.renew_run_slot("k", b, lease_s=60)
    assert not store.acquire_run_slot("k", new_job_id(), 2, lease_s=60)


def test_reaper_requeues_expired_leases_once(store: JobStore) -> None:
    stale = JobRecord(
        id=new_job_id(),
        filename="a.mp4",
        upload_path="/x/a.mp4",
        state=JobState.RUNNING,
        attempts=1,
        worker="dead:1",
        heartbeat_at=utcnow() - timedelta(seconds=45),
    )
    fresh = stale.model_copy(update={"id": new_job_id(), "heartbeat_at": utcnow()})
    queued = stale.model_copy(update={"id": new_job_id(), "state": JobState.QUEUED})
    for record in (stale, fresh, queued):
        store.create(record)
    published: list[str] = []
    assert reap_expired_leases(store, 30.0, lambda r: published.append(r.id)) == [stale.id]
    after = store.get(stale.id)
    assert after.state == JobState.QUEUED and after.attempts == 1 and after.worker is None
    assert published == [stale.id]
    # a second reaper (another worker) finds nothing left to do
    assert reap_expired_leases(store, 30.0, lambda r: published.append(r.id)) == []
    assert store.get(fresh.id).state == JobState.RUNNING
    # the dead attempt, were it only slow, can no longer record anything
    assert not store.update(
        stale.id, only_if_state={JobState.RUNNING}, expect={"attempts": 1}, state="succeeded"
    )
