"""Fault injection with real processes: a worker SIGKILLed mid-job, Redis going down and
coming back, the API restarting. No job may be lost and none may get two outcomes.

Needs ``redis-server`` on the PATH (a throwaway instance on a free loopback port is
started for the outage test; the shared Redis is never stopped), the shared Redis at
``MER_REDIS_TEST_URL`` and ``../shared/data``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest
import redis
from conftest import WorkerProcess
from fastapi.testclient import TestClient
from helpers import upload, wait_finished, wait_for

from mer.serving import free_port
from mer.video_writer import write_video
from service.main import create_app
from service.settings import ServiceSettings
from workers.jobstore import JobState, RedisJobStore
from workers.runner import CeleryRunner

pytestmark = [pytest.mark.redis, pytest.mark.media, pytest.mark.slow]

SERVICE_DOWN_CODES = {"queue_unavailable", "store_unavailable", "rate_limiter_unavailable"}


@pytest.fixture(scope="module")
def long_face_video(single_face_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """single_face.mp4 played 8 times (576 frames, ~6 s of analysis): long enough to be
    killed mid-way. Re-encoded with PyAV into a temporary file."""
    out = tmp_path_factory.mktemp("long") / "long_face.mp4"
    with av.open(str(single_face_video)) as src:
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    write_video(out, frames * 8, 25.0, codec="mpeg4", bit_rate=2_000_000)
    return out


@pytest.fixture
def fault_settings(auth_settings: ServiceSettings, redis_url: str) -> ServiceSettings:
    """Celery on the test Redis with a 5 s visibility timeout and a 1 s heartbeat (for
    the tests that do not measure redelivery itself)."""
    return auth_settings.model_copy(
        update={
            "broker_url": redis_url,
            "redis_url": redis_url,
            "visibility_timeout_s": 5,
            "heartbeat_s": 1.0,
        }
    )


def _job_lines(worker: WorkerProcess, job_id: str) -> list[dict]:
    lines = []
    for line in worker.log().splitlines():
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if data.get("job_id") == job_id:
                lines.append(data)
    return lines


@pytest.fixture
def default_celery_settings(auth_settings: ServiceSettings, redis_url: str) -> ServiceSettings:
    """Celery on the test Redis with the DEFAULT visibility timeout (7200 s), heartbeat
    (10 s) and reaper interval (10 s): what the compose file runs."""
    defaults = ServiceSettings(_env_file=None)  # type: ignore[call-arg]
    settings = auth_settings.model_copy(update={"broker_url": redis_url, "redis_url": redis_url})
    assert settings.visibility_timeout_s == defaults.visibility_timeout_s == 7200
    assert settings.heartbeat_s == defaults.heartbeat_s == 10.0
    assert settings.reaper_interval_s == defaults.reaper_interval_s == 10.0
    return settings


def test_sigkill_mid_job_is_taken_over_under_default_settings(
    default_celery_settings: ServiceSettings,
    start_worker: Callable[..., WorkerProcess],
    api_key: str,
    long_face_video: Path,
) -> None:
    """A worker SIGKILLed mid-job (solo pool, as in the compose file): a fresh worker's
    lease reaper requeues the job once its lease (3 heartbeats, 30 s) has expired, long
    before the 2-hour visibility timeout, and the job gets exactly one outcome."""
    settings = default_celery_settings
    queue = f"mer-kill-{uuid.uuid4().hex[:8]}"
    first = start_worker(settings, queue, name="a")
    store = RedisJobStore(settings.redis_url or "", ttl_s=3600)
    app = create_app(settings, runner=CeleryRunner(settings, queue=queue))
    second: WorkerProcess | None = None
    with TestClient(app, headers={"X-API-Key": api_key}) as client:
        r = upload(client, long_face_video)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        # wait until the analysis is well under way, then kill the worker outright
        wait_for(
            lambda: client.get(f"/v1/jobs/{job_id}").json(),
            lambda j: j["state"] == "running" and j["progress"]["percent"] >= 8,
            timeout_s=120,
            interval_s=0.1,
        )
        first.kill()
        killed_at = time.monotonic()
        killed = store.get(job_id)
        assert killed.state == JobState.RUNNING and killed.attempts == 1
        assert store.get_result(job_id) is None

        second = start_worker(settings, queue, name="b")
        try:
            # without the reaper the message would come back after the 7200 s visibility
            # timeout; the lease (30 s) + a scan (10 s) + the worker's start fit in 90 s
            wait_for(
                lambda: store.get(job_id).model_dump(mode="json"),
                lambda j: j["attempts"] == 2,
                timeout_s=90,
                interval_s=0.25,
            )
            takeover_s = time.monotonic() - killed_at
            print(f"takeover {takeover_s:.1f} s after the SIGKILL (default settings)")
            job = wait_finished(client, job_id, timeout_s=180)
            assert job["state"] == "succeeded", job
            assert job["result"]["video"]["frame_count"] == 8 * 72
            final = store.get(job_id)
            assert final.attempts == 2, "the job should have run exactly twice (killed, redone)"
            assert final.worker and final.worker.endswith(f":{second.pid}")
            # exactly one outcome: one success line in all the logs, one counted success
            done = [
                x
                for w in (first, second)
                for x in _job_lines(w, job_id)
                if "succeeded in" in x["message"]
            ]
            assert len(done) == 1, done
            assert any("lost its lease" in x["message"] for x in _job_lines(second, job_id))
            outcomes = store.read_stats().outcomes
            assert outcomes[("succeeded", "")] == 1
        except BaseException:
            print(
                f"--- worker a ---\n{first.log()[-3000:]}\n--- worker b ---\n{second.log()[-5000:]}"
            )
            raise
    # a restarted API still sees the job and its result
    with TestClient(create_app(settings), headers={"X-API-Key": api_key}) as client:
        again = client.get(f"/v1/jobs/{job_id}").json()
        assert again["state"] == "succeeded" and again["result"] is not None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A private ``redis-server`` on a free loopback port, with an append-only file (so a
    restart keeps its data, as a production Redis would). Yields ``(url, stop, start)``."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (needed for the outage test)")
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(data),
             "--daemonize", "no", "--logfile", str(data / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proc)
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    pytest.fail("the throwaway redis-server did not start")
                time.sleep(0.05)
        client.close()

    def stop() -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", stop, start
    finally:
        stop()


def test_redis_down_answers_503_with_a_code_and_recovers(
    throwaway_redis: tuple[str, Callable[[], None], Callable[[], None]],
    auth_settings: ServiceSettings,
    api_key: str,
    start_worker: Callable[..., WorkerProcess],
    single_face_video: Path,
) -> None:
    url, stop, start = throwaway_redis
    settings = auth_settings.model_copy(update={"broker_url": url, "redis_url": url})
    no_limits = settings.model_copy(update={"rate_limit": "none", "submit_rate_limit": "none"})
    queue = f"mer-down-{uuid.uuid4().hex[:8]}"
    headers = {"X-API-Key": api_key}
    app = create_app(settings, runner=CeleryRunner(settings, queue=queue))
    # a second app without rate limits reaches the store and the broker themselves
    bare = create_app(no_limits, runner=CeleryRunner(no_limits, queue=queue))
    with TestClient(app, headers=headers) as c, TestClient(bare, headers=headers) as b:
        before = upload(c, single_face_video)
        assert before.status_code == 202, before.text
        job_id = before.json()["job_id"]

        stop()
        for client in (c, b):
            t0 = time.monotonic()
            r = upload(client, single_face_video)
            assert r.status_code == 503, r.text
            assert r.json()["code"] in SERVICE_DOWN_CODES and r.json()["message"]
            r = client.get(f"/v1/jobs/{job_id}")
            assert r.status_code == 503 and r.json()["code"] in SERVICE_DOWN_CODES, r.text
            assert time.monotonic() - t0 < 30, "the API hung instead of failing fast"
        assert b.get(f"/v1/jobs/{job_id}").json()["code"] == "store_unavailable"
        assert b.post(f"/v1/jobs/{job_id}/cancel").json()["code"] == "store_unavailable"
        assert c.get(f"/v1/jobs/{job_id}").json()["code"] == "rate_limiter_unavailable"
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["code"] == "not_ready", r.text
        assert c.get("/healthz").status_code == 200
        assert c.get("/metrics").status_code == 200
        assert not any((Path(settings.data_dir) / "uploads").glob("*/*.mp4")) or all(
            p.parent.name == job_id for p in (Path(settings.data_dir) / "uploads").glob("*/*")
        ), "a refused upload left its file behind"

        start()  # same port, same append-only file
        wait_for(lambda: {"s": c.get("/readyz").status_code}, lambda x: x["s"] == 200, 30)
        job = c.get(f"/v1/jobs/{job_id}").json()
        assert job["state"] == "queued", job  # the job accepted before the outage is kept
        after = upload(c, single_face_video)
        assert after.status_code == 202, after.text
        assert upload(b, single_face_video).status_code == 202

        worker = start_worker(settings, queue, name="after-outage")
        try:
            for jid in (job_id, after.json()["job_id"]):
                assert wait_finished(c, jid, timeout_s=120)["state"] == "succeeded"
        except BaseException:
            print(worker.log()[-5000:])
            raise


def test_api_restart_loses_no_job_record(
    fault_settings: ServiceSettings, api_key: str, single_face_video: Path
) -> None:
    settings = fault_settings
    queue = f"mer-restart-{uuid.uuid4().hex[:8]}"
    headers = {"X-API-Key": api_key}
    with TestClient(
        create_app(settings, runner=CeleryRunner(settings, queue=queue)), headers=headers
    ) as c:
        ids = [upload(c, single_face_video).json()["job_id"] for _ in range(3)]
        assert c.delete(f"/v1/jobs/{ids[2]}").status_code == 204
    # the API process is gone; a new one on the same store sees every record it kept
    with TestClient(
        create_app(settings, runner=CeleryRunner(settings, queue=queue)), headers=headers
    ) as c:
        for job_id in ids[:2]:
            job = c.get(f"/v1/jobs/{job_id}").json()
            assert job["state"] == "queued" and job["filename"] == "single_face.mp4", job
        assert c.get(f"/v1/jobs/{ids[2]}").status_code == 404
        # the broker still holds their messages (nothing was published twice or dropped)
        assert c.app.state.runner.queue_depth() == 3  # the deleted job's is a no-op
