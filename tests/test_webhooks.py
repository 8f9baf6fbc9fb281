"""Webhooks: ``callback_url`` on upload, a signed POST when the job ends, retries with
backoff, attempts visible in the job record; private targets refused unless allowed.

A tiny HTTP server in a thread on 127.0.0.1 receives the calls (hence
``MER_WEBHOOK_ALLOW_PRIVATE=true`` in the tests that deliver).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import WorkerProcess
from fastapi.testclient import TestClient
from helpers import FakeAnalyzer, make_video, wait_finished, wait_for

from service.main import create_app
from service.settings import ServiceSettings
from workers import tasks
from workers.jobstore import FileJobStore, JobRecord, JobState, WebhookDelivery, new_job_id
from workers.reaper import reap_expired_leases
from workers.runner import CeleryRunner
from workers.webhooks import (
    SIGNATURE_HEADER,
    WebhookSettings,
    check_callback_url,
    deliver,
    sign,
    verify_signature,
)

SECRET = "whsec_test_0123456789"


class Receiver:
    """A loopback HTTP server that records every POST and answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.calls.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Loopback targets allowed, a signing secret, fast retries."""
    env = {
        "MER_WEBHOOK_ALLOW_PRIVATE": "true",
        "MER_WEBHOOK_SECRET": SECRET,
        "MER_WEBHOOK_BACKOFF_S": "0.2",
        "MER_WEBHOOK_RETRY_S": "20",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _post(client: TestClient, video: Path, callback_url: str | None, path: str = "/v1/analyze"):
    data = {"callback_url": callback_url} if callback_url is not None else None
    files = {"file": (video.name, video.read_bytes(), "video/mp4")}
    return client.post(path, files=files, data=data)


def _wait_webhook(client: TestClient, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: client.get(f"/v1/jobs/{job_id}").json(),
        lambda j: (j.get("webhook") or {}).get("status") in ("delivered", "failed"),
        timeout_s=timeout_s,
    )


def _check_call(call: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    body = call["body"]
    assert verify_signature(body, call["headers"][SIGNATURE_HEADER], SECRET)
    assert call["headers"][SIGNATURE_HEADER] == sign(body, SECRET)
    payload = json.loads(body)
    assert payload["job_id"] == job["job_id"] and payload["state"] == job["state"]
    assert payload["error"] == job["error"]
    assert payload["result_url"].endswith(f"/v1/jobs/{job['job_id']}")
    assert payload["result_url"].startswith("http")
    return payload


@pytest.mark.media
@pytest.mark.slow
def test_webhook_embedded_real_clips_signed_and_retried(
    settings: ServiceSettings,
    webhook_env: dict[str, str],
    single_face_video: Path,
    no_face_video: Path,
) -> None:
    with Receiver(statuses=[503]) as rx, TestClient(create_app(settings)) as c:
        r = _post(c, single_face_video, rx.url)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        pending = c.get(f"/v1/jobs/{job_id}").json()["webhook"]
        assert pending["url"] == rx.url and pending["status"] in ("pending", "delivering")
        job = wait_finished(c, job_id, timeout_s=180)
        assert job["state"] == "succeeded", job
        job = _wait_webhook(c, job_id)
        hook = job["webhook"]
        # the first answer was 503: retried with backoff, then delivered
        assert hook["status"] == "delivered" and hook["attempts"] == 2, hook
        assert hook["last_status_code"] == 200 and hook["delivered_at"]
        assert len(rx.calls) == 2 and rx.calls[0]["body"] == rx.calls[1]["body"]
        payload = _check_call(rx.calls[-1], job)
        assert payload["csv_url"].endswith("/result.csv")
        assert c.get(payload["result_url"]).json()["result"]["video"]["frame_count"] == 72

        # a failed job announces its error code
        r = _post(c, no_face_video, rx.url)
        job = wait_finished(c, r.json()["job_id"], timeout_s=180)
        assert job["state"] == "failed"
        job = _wait_webhook(c, job["job_id"])
        payload = _check_call(rx.calls[-1], job)
        assert payload["error"]["code"] == "no_face_detected" and payload["csv_url"] is None
        assert len(rx.calls) == 3  # one call per ended job (plus the one retry above)


def test_webhook_for_a_cancelled_queued_job(
    settings: ServiceSettings,
    webhook_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A queued job cancelled by the API ends there: the API sends its webhook."""
    fake = FakeAnalyzer(mode="block")
    monkeypatch.setattr(tasks, "load_analyzer", lambda: fake)
    video = make_video(tmp_path / "tiny.mp4")
    with Receiver() as rx, TestClient(create_app(settings)) as c:
        first = _post(c, video, None).json()["job_id"]  # occupies the one worker thread
        queued = _post(c, video, rx.url).json()["job_id"]
        assert c.post(f"/v1/jobs/{queued}/cancel").json()["state"] == "cancelled"
        job = _wait_webhook(c, queued, timeout_s=20)
        assert job["webhook"]["status"] == "delivered", job
        payload = _check_call(rx.calls[0], job)
        assert payload["state"] == "cancelled" and payload["error"]["code"] == "job_cancelled"
        fake.release.set()
        wait_finished(c, first)
        assert len(rx.calls) == 1


def test_private_and_malformed_callback_urls_are_refused(
    settings: ServiceSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MER_WEBHOOK_ALLOW_PRIVATE", raising=False)
    video = make_video(tmp_path / "tiny.mp4")
    with TestClient(create_app(settings)) as c:
        for url, code in [
            ("http://127.0.0.1:8080/hook", "callback_url_not_allowed"),
            ("http://localhost/hook", "callback_url_not_allowed"),
            ("http://169.254.169.254/latest/meta-data", "callback_url_not_allowed"),
            ("http://10.1.2.3/hook", "callback_url_not_allowed"),
            ("http://[::1]/hook", "callback_url_not_allowed"),
            ("http://[::ffff:192.168.0.1]/hook", "callback_url_not_allowed"),
            ("ftp://example.com/hook", "invalid_callback_url"),
            ("/relative/hook", "invalid_callback_url"),
            ("http://user:pw@example.com/hook", "invalid_callback_url"),
            ("http://" + "a" * 2100 + ".com/", "validation_error"),  # over the field limit
        ]:
            r = _post(c, video, url)
            assert r.status_code in (400, 422), (url, r.text)
            assert r.json()["code"] == code, (url, r.json())
        assert not list((Path(settings.data_dir) / "uploads").glob("*/*")), "files left behind"
        assert c.app.state.job_store.active_slots("anonymous") == 0


def test_check_callback_url_allows_private_only_when_told() -> None:
    assert check_callback_url(" http://127.0.0.1:9/x ", allow_private=True) == (
        "http://127.0.0.1:9/x"
    )
    with pytest.raises(Exception) as info:
        check_callback_url("http://127.0.0.1:9/x", allow_private=False)
    assert getattr(info.value, "code", "") == "callback_url_not_allowed"


def _finished_record(store: FileJobStore, url: str) -> JobRecord:
    record = JobRecord(
        id=new_job_id(),
        filename="a.mp4",
        upload_path="/x/a.mp4",
        state=JobState.FAILED,
        webhook=WebhookDelivery(url=url, result_url="http://api/v1/jobs/x", status="delivering"),
    )
    store.create(record)
    return record


def test_delivery_gives_up_after_its_retry_time_and_on_4xx(tmp_path: Path) -> None:
    store = FileJobStore(tmp_path / "jobs", ttl_s=3600)
    fast = WebhookSettings(
        _env_file=None,  # type: ignore[call-arg]
        allow_private=True,
        backoff_s=0.1,
        backoff_max_s=0.2,
        retry_s=1.0,
    )
    with Receiver(statuses=[500] * 100) as rx:
        record = _finished_record(store, rx.url)
        hook = deliver(store, record, fast)
        assert hook.status == "failed" and hook.last_status_code == 500
        assert 3 <= hook.attempts == len(rx.calls) <= 12, hook
        assert store.get(record.id).webhook == hook
        assert SIGNATURE_HEADER not in rx.calls[0]["headers"]  # no secret: unsigned
    with Receiver(statuses=[410]) as rx:
        record = _finished_record(store, rx.url)
        hook = deliver(store, record, fast)
        assert hook.status == "failed" and hook.attempts == 1 and hook.last_status_code == 410
    # nobody listening: connection errors are retried, then recorded
    record = _finished_record(store, "http://127.0.0.1:9/nothing")
    hook = deliver(store, record, fast)
    assert hook.status == "failed" and hook.attempts >= 2 and hook.last_error


@pytest.mark.redis
@pytest.mark.media
@pytest.mark.slow
def test_webhook_from_a_celery_worker(
    redis_url: str,
    auth_settings: ServiceSettings,
    api_key: str,
    webhook_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    single_face_video: Path,
) -> None:
    settings = auth_settings.model_copy(update={"broker_url": redis_url, "redis_url": redis_url})
    queue = f"mer-hook-{uuid.uuid4().hex[:8]}"
    worker = start_worker(settings, queue, env=webhook_env)
    app = create_app(settings, runner=CeleryRunner(settings, queue=queue))
    with (
        Receiver(statuses=[502]) as rx,
        TestClient(app, headers={"X-API-Key": api_key}) as c,
    ):
        try:
            r = _post(c, single_face_video, rx.url)
            assert r.status_code == 202, r.text
            job = wait_finished(c, r.json()["job_id"], timeout_s=180)
            assert job["state"] == "succeeded", job
            job = _wait_webhook(c, job["job_id"])
            assert job["webhook"]["status"] == "delivered" and job["webhook"]["attempts"] == 2
            assert len(rx.calls) == 2
            _check_call(rx.calls[-1], job)
        except BaseException:
            print(worker.log()[-5000:])
            raise


def test_reaper_resumes_a_webhook_whose_sender_died(
    tmp_path: Path, webhook_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MER_WEBHOOK_RETRY_S", "1")
    store = FileJobStore(tmp_path / "jobs", ttl_s=3600)
    with Receiver() as rx:
        record = _finished_record(store, rx.url)  # "delivering", no attempt recorded
        long_ago = record.updated_at - timedelta(minutes=10)
        store.update(record.id, updated_at=long_ago)
        fresh = _finished_record(store, rx.url)  # a live delivery: left alone
        assert reap_expired_leases(store, 30.0, lambda r: None) == []
        wait_for(
            lambda: store.get(record.id).webhook.model_dump(),
            lambda h: h["status"] == "delivered",
            timeout_s=20,
        )
        assert len(rx.calls) == 1 and json.loads(rx.calls[0]["body"])["job_id"] == record.id
        assert store.get(fresh.id).webhook.status == "delivering"
