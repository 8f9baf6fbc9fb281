"""End to end with a REAL Celery worker process, Redis broker and Redis job store.

Needs Redis at ``MER_REDIS_TEST_URL`` (db 15 is flushed) and ``../shared/data``. Fault
injection (SIGKILL mid-job, Redis down) is in ``test_faults.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import WorkerProcess
from fastapi.testclient import TestClient
from helpers import check_single_face_result, upload, wait_finished

from service.main import create_app
from service.settings import ServiceSettings
from workers.celery_app import ANALYZE_TASK_NAME, create_celery_app
from workers.jobstore import RedisJobStore
from workers.runner import CeleryRunner

pytestmark = [pytest.mark.redis, pytest.mark.media, pytest.mark.slow]


@pytest.fixture
def celery_settings(redis_url: str, auth_settings: ServiceSettings) -> ServiceSettings:
    """Authenticated settings with the test Redis as broker and job store."""
    return auth_settings.model_copy(update={"broker_url": redis_url, "redis_url": redis_url})


def test_celery_worker_end_to_end(
    celery_settings: ServiceSettings,
    start_worker: Callable[..., WorkerProcess],
    api_key: str,
    single_face_video: Path,
    no_face_video: Path,
) -> None:
    settings = celery_settings
    queue = f"mer-test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(settings, queue)
    app = create_app(settings, runner=CeleryRunner(settings, queue=queue))
    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "job_store": "redis",
            "runner": "celery",
            "rate_limiter": "redis",
        }

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

            # a duplicate delivery of a finished job is a no-op (at-least-once delivery)
            store = RedisJobStore(settings.redis_url or "", ttl_s=3600)
            before = store.get(job["job_id"])
            result_before = store.get_result(job["job_id"])
            celery = create_celery_app(settings)
            record = store.get(job["job_id"])
            celery.send_task(
                ANALYZE_TASK_NAME, args=[job["job_id"], record.upload_path, "x"], queue=queue
            )
            job2 = run(no_face_video)  # queued behind the duplicate: it has been handled
            assert job2["state"] == "failed", job2
            assert job2["error"]["code"] == "no_face_detected"
            assert "duplicate delivery skipped" in worker.log()
            after = store.get(job["job_id"])
            assert after == before, "the duplicate delivery changed the record"
            assert store.get_result(job["job_id"]) == result_before
            assert after.attempts == 1

            # job outcomes and stage times recorded by the worker show in the API's metrics
            metrics = client.get("/metrics").text
            assert 'mer_jobs_finished_total{code="",state="succeeded"} 1.0' in metrics
            assert 'mer_jobs_finished_total{code="no_face_detected",state="failed"} 1.0' in metrics
            assert 'mer_job_stage_duration_seconds_count{stage="landmarks"}' in metrics
            assert "mer_queue_depth 0.0" in metrics

            job = run(single_face_video)  # the worker survived the failure
            assert job["state"] == "succeeded", job

            assert client.delete(f"/v1/jobs/{job['job_id']}").status_code == 204
            assert client.get(f"/v1/jobs/{job['job_id']}").status_code == 404
            # every worker log line is JSON with the job id where there is one
            assert f'"job_id": "{job["job_id"]}"' in worker.log()
        except BaseException:
            print(f"--- worker log ---\n{worker.log()[-6000:]}")
            raise


def test_queue_is_configurable_for_worker_pools() -> None:
    from workers.celery_app import ANALYZE_TASK_NAME, create_celery_app
    from workers.runner import CeleryRunner

    s = ServiceSettings(
        _env_file=None, broker_url="redis://127.0.0.1:6379/15", celery_queue="gpu-pool"
    )  # type: ignore[call-arg]
    app = create_celery_app(s)
    assert app.conf.task_default_queue == "gpu-pool"
    assert app.conf.task_routes[ANALYZE_TASK_NAME] == {"queue": "gpu-pool"}
    assert CeleryRunner(s, app=app).queue == "gpu-pool"
