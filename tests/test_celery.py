"""End to end with a REAL Celery worker process, Redis broker and Redis job store.

Needs Redis at ``MER_REDIS_TEST_URL`` (db 15 is flushed) and ``../shared/data``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import check_single_face_result, upload, wait_finished

from mer.settings import Settings
from service.main import create_app
from workers.runner import CeleryRunner

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.redis, pytest.mark.media, pytest.mark.slow]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL the worker's process group if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def celery_setup(redis_url: str, tmp_path: Path) -> Iterator[tuple[Settings, str, Path]]:
    """Start ``celery worker`` on a queue of its own; yield settings, queue and log path."""
    data_dir = tmp_path / "data"
    queue = f"mer-test-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "MER_BROKER_URL": redis_url,
        "MER_REDIS_URL": redis_url,
        "MER_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "--pool=solo", "--concurrency=1", "-Q", queue, "--loglevel=INFO",
        "--hostname", f"{queue}@%h", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"celery worker did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=data_dir,
            broker_url=redis_url,
            redis_url=redis_url,
        )
        yield settings, queue, log_path
    finally:
        _stop(proc)


def test_celery_worker_end_to_end(
    celery_setup: tuple[Settings, str, Path],
    single_face_video: Path,
    no_face_video: Path,
) -> None:
    settings, queue, log_path = celery_setup
    app = create_app(settings, runner=CeleryRunner(settings, queue=queue))
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "job_store": "redis", "runner": "celery"}

        def run(video: Path) -> dict:
            r = upload(client, video)
            assert r.status_code == 202, r.text
            job = wait_finished(client, r.json()["job_id"], timeout_s=180)
            assert job["state"] in ("succeeded", "failed"), job
            return job

        try:
            job = run(single_face_video)
            assert job["state"] == "succeeded", job
            check_single_face_result(job["result"])
            csv_text = client.get(f"/v1/jobs/{job['job_id']}/result.csv").text
            assert len(csv_text.strip().splitlines()) == 1 + 72

            job = run(no_face_video)
            assert job["state"] == "failed", job
            assert job["error"]["code"] == "no_face_detected"

            job = run(single_face_video)  # the worker survived the failure
            assert job["state"] == "succeeded", job

            assert client.delete(f"/v1/jobs/{job['job_id']}").status_code == 204
            assert client.get(f"/v1/jobs/{job['job_id']}").status_code == 404
        except BaseException:
            print(f"--- worker log ---\n{log_path.read_text(errors='replace')[-6000:]}")
            raise
