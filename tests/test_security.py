"""Authentication, per-key rate limits and job quotas, idempotency, cancellation,
retention (404 vs 410), request ids, structured logs and metrics.

The embedded runner with :class:`helpers.FakeAnalyzer` (no models: fast); the limits are
exercised against the in-memory limiter and against the real Redis.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from fastapi.testclient import TestClient
from helpers import FakeAnalyzer, make_video, upload, wait_finished

from service.auth import hash_key, parse_key_entries
from service.main import create_app
from service.settings import ServiceSettings
from service.upload import sweep_orphans, upload_dir_for
from workers import tasks
from workers.jobstore import FileJobStore, JobStore, RedisJobStore
from workers.logs import JsonFormatter, bind

OTHER_KEY = "mer_other_key_abcdef"
REVOKED_KEY = "mer_revoked_key_zzz"


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 64x48 MPEG-4 clip (valid for probe_video)."""
    return make_video(tmp_path_factory.mktemp("media") / "tiny.mp4")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAnalyzer:
    """The analyzer the embedded runner calls."""
    analyzer = FakeAnalyzer()
    monkeypatch.setattr(tasks, "load_analyzer", lambda: analyzer)
    return analyzer


@pytest.fixture
def keyed_settings(auth_settings: ServiceSettings) -> ServiceSettings:
    """Three keys: ``tester`` (valid), ``other`` (valid), ``old`` (revoked)."""
    keys = (
        f"{auth_settings.api_keys},other:{hash_key(OTHER_KEY)},old:{hash_key(REVOKED_KEY)}:revoked"
    )
    return auth_settings.model_copy(update={"api_keys": keys})


@pytest.fixture
def client(keyed_settings: ServiceSettings, fake: FakeAnalyzer) -> Iterator[TestClient]:
    """An app with auth on; the client sends no key by default."""
    with TestClient(create_app(keyed_settings)) as c:
        yield c


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    return body


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- authentication ------------------------------------------------------------------------


def test_missing_invalid_revoked_and_valid_keys(
    client: TestClient, api_key: str, tiny_video: Path
) -> None:
    job_url = "/v1/jobs/" + "0" * 32
    r = client.get(job_url)
    _error(r, 401, "missing_api_key")
    assert r.headers["www-authenticate"].startswith("Bearer")
    _error(
        client.get(job_url, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "missing_api_key"
    )
    _error(client.get(job_url, headers=_bearer("wrong")), 401, "invalid_api_key")
    _error(client.get(job_url, headers={"X-API-Key": "x" * 5000}), 401, "invalid_api_key")
    _error(client.get(job_url, headers=_bearer(REVOKED_KEY)), 403, "api_key_revoked")
    _error(client.get(job_url, headers={"X-API-Key": REVOKED_KEY}), 403, "api_key_revoked")
    # an upload without a key is refused before its body is read: no job, no file
    _error(upload(client, tiny_video), 401, "missing_api_key")
    # both header forms work
    _error(client.get(job_url, headers=_bearer(api_key)), 404, "job_not_found")
    _error(client.get(job_url, headers={"X-API-Key": api_key}), 404, "job_not_found")
    # probes and docs stay open
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])


def test_jobs_are_private_to_their_key(
    client: TestClient, api_key: str, tiny_video: Path, keyed_settings: ServiceSettings
) -> None:
    r = client.post(
        "/v1/analyze",
        files={"file": ("t.mp4", tiny_video.read_bytes(), "video/mp4")},
        headers=_bearer(api_key),
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    other = _bearer(OTHER_KEY)
    _error(client.get(f"/v1/jobs/{job_id}", headers=other), 404, "job_not_found")
    _error(client.delete(f"/v1/jobs/{job_id}", headers=other), 404, "job_not_found")
    _error(client.post(f"/v1/jobs/{job_id}/cancel", headers=other), 404, "job_not_found")
    assert client.get(f"/v1/jobs/{job_id}", headers=_bearer(api_key)).status_code == 200
    store = client.app.state.job_store
    assert store.get(job_id).owner == "tester"


def test_keys_file_is_hashed_reloaded_and_revocable(
    settings: ServiceSettings, tmp_path: Path, fake: FakeAnalyzer
) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# clients\nalice:{hash_key('alice-key')}\n")
    s = settings.model_copy(update={"auth_enabled": True, "api_keys_file": keys_file})
    with TestClient(create_app(s)) as c:
        url = "/v1/jobs/" + "0" * 32
        _error(c.get(url, headers=_bearer("alice-key")), 404, "job_not_found")
        _error(c.get(url, headers=_bearer("bob-key")), 401, "invalid_api_key")
        time.sleep(1.1)  # the file is re-read at most once a second, on a new mtime
        keys_file.write_text(f"alice:{hash_key('alice-key')}:revoked\nbob:{hash_key('bob-key')}\n")
        deadline = time.monotonic() + 5
        while c.get(url, headers=_bearer("alice-key")).status_code != 403:
            assert time.monotonic() < deadline, "revocation in the key file was not picked up"
            time.sleep(0.2)
        _error(c.get(url, headers=_bearer("bob-key")), 404, "job_not_found")
    # MER_REVOKED_KEYS revokes by name
    s2 = s.model_copy(update={"revoked_keys": "bob"})
    with TestClient(create_app(s2)) as c:
        _error(c.get("/v1/jobs/x", headers=_bearer("bob-key")), 403, "api_key_revoked")


def test_key_entries_must_be_hashes() -> None:
    assert parse_key_entries(f"a:{'0' * 64}, b:{'f' * 64}:revoked")[1].revoked
    for bad in ("alice:plaintextkey", "alice", f"al ice:{'0' * 64}", f"a:{'0' * 64}:x"):
        with pytest.raises(ValueError) as info:
            parse_key_entries(bad)
        assert "plaintextkey" not in str(info.value)
    with pytest.raises(ValueError):
        create_app(ServiceSettings(_env_file=None, api_keys="alice:secret"))


def test_keys_cli_prints_the_hash_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service.keys", "--name", "alice", "s3cret"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == f"alice:{hash_key('s3cret')}"
    gen = subprocess.run(
        [sys.executable, "-m", "service.keys"], cwd=REPO_ROOT, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    key = gen.stderr.strip().rsplit(" ", 1)[-1]
    assert key.startswith("mer_") and gen.stdout.strip() == f"client:{hash_key(key)}"


def test_auth_disabled_logs_a_loud_warning(
    settings: ServiceSettings,
    caplog: pytest.LogCaptureFixture,
    tiny_video: Path,
    fake: FakeAnalyzer,
) -> None:
    with caplog.at_level(logging.WARNING, logger="service.main"):
        app = create_app(settings)
    assert any(
        r.levelno == logging.WARNING and "AUTHENTICATION IS DISABLED" in r.getMessage()
        for r in caplog.records
    )
    with TestClient(app) as c:
        r = upload(c, tiny_video)
        assert r.status_code == 202
        assert wait_finished(c, r.json()["job_id"])["state"] == "succeeded"
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="service.main"):
        create_app(settings.model_copy(update={"auth_enabled": True}))
    assert any("no API keys are configured" in r.getMessage() for r in caplog.records)


# -- rate limits and quotas ----------------------------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limited_settings(
    request: pytest.FixtureRequest, keyed_settings: ServiceSettings
) -> ServiceSettings:
    """Tight limits, with the limiter in memory or in the real Redis."""
    update = {"rate_limit": "5/minute", "submit_rate_limit": "100/minute"}
    if request.param == "redis":
        update["redis_url"] = request.getfixturevalue("redis_url")
    return keyed_settings.model_copy(update=update)


def test_rate_limit_429_with_retry_after(
    limited_settings: ServiceSettings, api_key: str, fake: FakeAnalyzer
) -> None:
    with TestClient(create_app(limited_settings)) as c:
        url = "/v1/jobs/" + "0" * 32
        for _ in range(5):
            _error(c.get(url, headers=_bearer(api_key)), 404, "job_not_found")
        r = c.get(url, headers=_bearer(api_key))
        _error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # the limit is per key: another key is not affected
        _error(c.get(url, headers=_bearer(OTHER_KEY)), 404, "job_not_found")


def test_submit_rate_limit(
    keyed_settings: ServiceSettings, api_key: str, tiny_video: Path, fake
) -> None:
    s = keyed_settings.model_copy(update={"submit_rate_limit": "2/minute"})
    with TestClient(create_app(s), headers=_bearer(api_key)) as c:
        for _ in range(2):
            assert upload(c, tiny_video).status_code == 202
        r = upload(c, tiny_video)
        _error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/v1/jobs/" + "0" * 32).status_code == 404  # other routes still fine


@pytest.mark.parametrize("kind", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_backlog_quota(
    kind: str,
    request: pytest.FixtureRequest,
    keyed_settings: ServiceSettings,
    api_key: str,
    tiny_video: Path,
    fake: FakeAnalyzer,
) -> None:
    s = keyed_settings.model_copy(update={"max_queued_jobs_per_key": 2})
    store: JobStore
    if kind == "redis":
        store = RedisJobStore(request.getfixturevalue("redis_url"), ttl_s=3600)
    else:
        store = FileJobStore(Path(s.data_dir) / "jobs", ttl_s=3600)
    fake.mode = "block"
    with TestClient(create_app(s, job_store=store), headers=_bearer(api_key)) as c:
        ids = [upload(c, tiny_video).json()["job_id"] for _ in range(2)]
        r = upload(c, tiny_video)
        _error(r, 429, "too_many_jobs")
        assert r.headers["retry-after"] == "5"
        # another key has its own quota
        r = c.post(
            "/v1/analyze",
            files={"file": ("t.mp4", tiny_video.read_bytes(), "video/mp4")},
            headers=_bearer(OTHER_KEY),
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["job_id"])
        fake.release.set()  # jobs finish: their slots are free again
        for job_id in ids:
            owner = {} if job_id != ids[-1] else _bearer(OTHER_KEY)
            wait_finished_as(c, job_id, owner)
        fake.mode = "ok"
        assert upload(c, tiny_video).status_code == 202


def wait_finished_as(c: TestClient, job_id: str, headers: dict[str, str]) -> dict:
    """Poll a job with explicit headers until it is finished."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not finish")


# -- idempotency ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_idempotency_key_replays_the_first_job(
    kind: str,
    request: pytest.FixtureRequest,
    keyed_settings: ServiceSettings,
    api_key: str,
    tiny_video: Path,
    fake: FakeAnalyzer,
) -> None:
    store: JobStore
    if kind == "redis":
        store = RedisJobStore(request.getfixturevalue("redis_url"), ttl_s=3600)
    else:
        store = FileJobStore(Path(keyed_settings.data_dir) / "jobs", ttl_s=3600)
    with TestClient(create_app(keyed_settings, job_store=store)) as c:
        files = {"file": ("t.mp4", tiny_video.read_bytes(), "video/mp4")}
        h = {**_bearer(api_key), "Idempotency-Key": "order-42"}
        first = c.post("/v1/analyze", files=files, headers=h)
        assert first.status_code == 202, first.text
        job_id = first.json()["job_id"]
        assert "idempotent-replayed" not in first.headers
        again = c.post("/v1/analyze", files=files, headers=h)
        assert again.status_code == 202
        assert again.json()["job_id"] == job_id
        assert again.headers["idempotent-replayed"] == "true"
        assert len(list(store.iter_ids())) == 1
        uploads = Path(keyed_settings.data_dir).resolve() / "uploads"
        assert [p.name for p in uploads.iterdir()] == [job_id]  # the replay stored nothing
        # the same key from another API key is another request
        other = c.post(
            "/v1/analyze",
            files=files,
            headers={**_bearer(OTHER_KEY), "Idempotency-Key": "order-42"},
        )
        assert other.status_code == 202 and other.json()["job_id"] != job_id
        # a rejected upload does not burn the key
        h2 = {**_bearer(api_key), "Idempotency-Key": "order-43"}
        bad = c.post(
            "/v1/analyze", files={"file": ("x.mp4", b"junk" * 10, "video/mp4")}, headers=h2
        )
        _error(bad, 422, "invalid_video")
        good = c.post("/v1/analyze", files=files, headers=h2)
        assert good.status_code == 202 and "idempotent-replayed" not in good.headers
        # after the job is deleted, the key starts a new job
        wait_finished_as(c, job_id, _bearer(api_key))
        assert c.delete(f"/v1/jobs/{job_id}", headers=_bearer(api_key)).status_code == 204
        fresh = c.post("/v1/analyze", files=files, headers=h)
        assert fresh.status_code == 202 and fresh.json()["job_id"] != job_id
        bad_key = {**_bearer(api_key), "Idempotency-Key": "has space"}
        _error(c.post("/v1/analyze", files=files, headers=bad_key), 422, "invalid_idempotency_key")


# -- cancellation and retention ------------------------------------------------------------


def test_cancel_endpoint_stops_a_running_job(
    auth_settings: ServiceSettings, api_key: str, tiny_video: Path, fake: FakeAnalyzer
) -> None:
    fake.mode = "block"
    with TestClient(create_app(auth_settings), headers=_bearer(api_key)) as c:
        job_id = upload(c, tiny_video).json()["job_id"]
        assert fake.started.wait(10)
        r = c.post(f"/v1/jobs/{job_id}/cancel")
        assert r.status_code == 202
        assert r.json()["cancel_requested"] is True
        job = wait_finished(c, job_id, timeout_s=10)
        assert job["state"] == "cancelled"
        assert job["error"]["code"] == "job_cancelled"
        # a queued job is cancelled at once; a finished one is left alone
        fake.mode = "ok"
        done = upload(c, tiny_video).json()["job_id"]
        assert wait_finished(c, done)["state"] == "succeeded"
        assert c.post(f"/v1/jobs/{done}/cancel").json()["state"] == "succeeded"


@pytest.mark.parametrize("kind", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_retention_expires_jobs_with_410_and_deletes_files(
    kind: str,
    request: pytest.FixtureRequest,
    auth_settings: ServiceSettings,
    api_key: str,
    tiny_video: Path,
    fake: FakeAnalyzer,
) -> None:
    s = auth_settings.model_copy(update={"job_ttl_s": 2})
    store: JobStore
    if kind == "redis":
        store = RedisJobStore(request.getfixturevalue("redis_url"), ttl_s=2)
    else:
        store = FileJobStore(Path(s.data_dir) / "jobs", ttl_s=2)
    with TestClient(create_app(s, job_store=store), headers=_bearer(api_key)) as c:
        job_id = upload(c, tiny_video).json()["job_id"]
        assert wait_finished(c, job_id)["state"] == "succeeded"
        assert c.get(f"/v1/jobs/{job_id}/result.csv").status_code == 200
        deleted = upload(c, tiny_video).json()["job_id"]
        assert wait_finished(c, deleted)["state"] == "succeeded"
        assert c.delete(f"/v1/jobs/{deleted}").status_code == 204
        assert upload_dir_for(s, job_id).is_dir()
        time.sleep(3.1)
        _error(c.get(f"/v1/jobs/{job_id}"), 410, "job_expired")
        _error(c.get(f"/v1/jobs/{job_id}/result.csv"), 410, "job_expired")
        _error(c.get(f"/v1/jobs/{deleted}"), 404, "job_not_found")  # deleted, not expired
        _error(c.get("/v1/jobs/" + "1" * 32), 404, "job_not_found")
        assert store.get_result(job_id) is None
        assert sweep_orphans(s, store) >= 1
        assert not upload_dir_for(s, job_id).exists()


# -- request ids, logs, metrics ------------------------------------------------------------


def test_request_id_is_echoed_or_generated(client: TestClient, api_key: str) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers
    assert len(generated["x-request-id"]) == 32 and generated["x-request-id"] != "bad id!"
    r = client.get("/v1/jobs/x", headers={"X-Request-ID": "req-401"})
    assert r.status_code == 401 and r.headers["x-request-id"] == "req-401"


def test_logs_are_json_with_request_and_job_ids(
    auth_settings: ServiceSettings,
    api_key: str,
    tiny_video: Path,
    fake: FakeAnalyzer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with TestClient(create_app(auth_settings), headers=_bearer(api_key)) as c:
        r = c.post(
            "/v1/analyze",
            files={"file": ("t.mp4", tiny_video.read_bytes(), "video/mp4")},
            headers={"X-Request-ID": "req-log-1"},
        )
        job_id = r.json()["job_id"]
        wait_finished(c, job_id)
    fmt = JsonFormatter()
    lines = [json.loads(fmt.format(rec)) for rec in caplog.records]
    accepted = [x for x in lines if x["message"].startswith(f"job {job_id}: accepted")]
    assert accepted and accepted[0]["request_id"] == "req-log-1"
    assert accepted[0]["job_id"] == job_id and accepted[0]["owner"] == "tester"
    worker = [x for x in lines if x["logger"] == "workers.tasks" and x["job_id"] == job_id]
    assert any("succeeded" in x["message"] for x in worker), worker
    assert all(x["request_id"] == "req-log-1" for x in worker)  # carried by the record
    access = [x for x in lines if x["logger"] == "mer.access" and x["request_id"] == "req-log-1"]
    assert access and access[0]["status"] == 202 and access[0]["route"] == "/v1/analyze"
    # the formatter is valid JSON for exceptions too, and bind() sets ids
    with bind(job_id="j1", request_id="r1"):
        try:
            raise ValueError("boom")
        except ValueError:
            rec = logging.LogRecord("t", logging.ERROR, "f", 1, "msg %s", ("x",), sys.exc_info())
    with bind(job_id="j1", request_id="r1"):
        out = json.loads(fmt.format(rec))
    assert out["message"] == "msg x" and out["job_id"] == "j1" and "ValueError" in out["exc"]


def test_metrics_endpoint(
    auth_settings: ServiceSettings, api_key: str, tiny_video: Path, fake: FakeAnalyzer
) -> None:
    with TestClient(create_app(auth_settings), headers=_bearer(api_key)) as c:
        job_id = upload(c, tiny_video).json()["job_id"]
        wait_finished(c, job_id)
        fake.mode = "mer_error"
        wait_finished(c, upload(c, tiny_video).json()["job_id"])
        c.get("/v1/jobs/" + "0" * 32)
        c.get("/v1/jobs/x", headers={"X-API-Key": "nope"})
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'mer_http_requests_total{method="POST",route="/v1/analyze",status="202"} 2.0' in text
    assert 'mer_http_request_duration_seconds_count{method="GET",route="/v1/jobs/{job_id}"}' in text
    assert 'mer_errors_total{code="job_not_found"} 1.0' in text
    assert 'mer_errors_total{code="invalid_api_key"} 1.0' in text
    assert 'mer_jobs_finished_total{code="",state="succeeded"} 1.0' in text
    assert 'mer_jobs_finished_total{code="no_face_detected",state="failed"} 1.0' in text
    assert 'mer_job_stage_duration_seconds_bucket{le="+Inf",stage="total"} 1.0' in text
    assert "mer_queue_depth 0.0" in text


def test_slow_upload_times_out_with_408(
    auth_settings: ServiceSettings, api_key: str, fake: FakeAnalyzer
) -> None:
    """A client trickling its body is cut off after ``upload_timeout_s`` (raw ASGI calls:
    the test client would buffer the whole body before the app sees it)."""
    import anyio

    s = auth_settings.model_copy(update={"upload_timeout_s": 0.5})
    app = create_app(s)
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
    sent: list[dict] = []

    async def receive() -> dict:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": head, "more_body": True}
        await anyio.sleep(0.1)  # a slow client: 2 s for 20 chunks
        sent.append({})
        return {"type": "http.request", "body": b"x" * 100, "more_body": len(sent) < 20}

    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/analyze", "raw_path": b"/v1/analyze", "root_path": "",
        "query_string": b"", "server": ("testserver", 80), "client": ("127.0.0.1", 1),
        "headers": [
            (b"content-type", b"multipart/form-data; boundary=b"),
            (b"authorization", f"Bearer {api_key}".encode()),
        ],
    }  # fmt: skip
    started = time.monotonic()
    anyio.run(app, scope, receive, send)
    assert time.monotonic() - started < 1.5
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = json.loads(
        b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    )
    assert start["status"] == 408 and body["code"] == "upload_timeout", body
    store = app.state.job_store
    assert list(store.iter_ids()) == []
    assert store.active_slots("tester") == 0  # the slot was given back
    uploads = Path(s.data_dir) / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
