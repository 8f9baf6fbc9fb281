"""API behaviour with the embedded runner and a fake analyzer (no models, fast).

A small synthetic video passes the real ``probe_video`` check; ``workers.tasks``'s
``load_analyzer`` is swapped for :class:`helpers.FakeAnalyzer`. The end-to-end tests with
the real pipeline are in ``test_api_e2e.py``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import FakeAnalyzer, fake_result, make_video, upload, wait_finished

from mer.schemas import CSV_COLUMNS, AnalysisResult
from service.main import create_app
from service.settings import ServiceSettings
from workers import tasks
from workers.jobstore import FileJobStore, JobStore, RedisJobStore

ERROR_KEYS = {"code", "message"}


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 64x48 MPEG-4 clip (valid for probe_video)."""
    return make_video(tmp_path_factory.mktemp("media") / "tiny.mp4")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAnalyzer:
    """The analyzer the runner will call."""
    analyzer = FakeAnalyzer()
    monkeypatch.setattr(tasks, "load_analyzer", lambda: analyzer)
    return analyzer


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, settings: ServiceSettings) -> JobStore:
    """Both job stores behind the same embedded runner."""
    if request.param == "file":
        return FileJobStore(Path(settings.data_dir) / "jobs", ttl_s=3600)
    return RedisJobStore(request.getfixturevalue("redis_url"), ttl_s=3600)


@pytest.fixture
def client(
    auth_settings: ServiceSettings, store: JobStore, fake: FakeAnalyzer, api_key: str
) -> Iterator[TestClient]:
    """A TestClient on an app with the embedded runner (started by its lifespan),
    authentication on, sending a valid key."""
    app = create_app(auth_settings, job_store=store)
    with TestClient(app, headers={"X-API-Key": api_key}) as c:
        yield c


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code, body
    assert body["message"]
    return body


# -- health and docs -------------------------------------------------------------------


def test_health_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["runner"] == "embedded"
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/analyze", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result.csv"} <= set(
        spec["paths"]
    )
    body = spec["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body


def test_readyz_503_when_broker_unreachable(tmp_path: Path) -> None:
    settings = ServiceSettings(
        _env_file=None,
        data_dir=tmp_path,
        broker_url="redis://127.0.0.1:1/0",
        redis_url=None,
        auth_enabled=False,
    )
    with TestClient(create_app(settings)) as c:
        _error(c.get("/readyz"), 503, "not_ready")


def test_submit_fails_cleanly_when_broker_unreachable(tmp_path: Path, tiny_video: Path) -> None:
    settings = ServiceSettings(
        _env_file=None,
        data_dir=tmp_path,
        broker_url="redis://127.0.0.1:1/0",
        redis_url=None,
        auth_enabled=False,
        rate_limit="none",  # no limiter storage involved: the broker is what fails here
        submit_rate_limit="none",
    )
    store = FileJobStore(tmp_path / "jobs", ttl_s=3600)
    with TestClient(create_app(settings, job_store=store)) as c:
        _error(upload(c, tiny_video), 503, "queue_unavailable")
    assert list(store.iter_ids()) == []
    assert not any((tmp_path / "uploads").glob("*/*"))


# -- happy path ------------------------------------------------------------------------


def test_analyze_poll_csv_delete(
    client: TestClient, fake: FakeAnalyzer, settings: ServiceSettings, tiny_video: Path
) -> None:
    r = upload(client, tiny_video, name="my clip.mp4")
    assert r.status_code == 202, r.text
    accepted = r.json()
    job_id = accepted["job_id"]
    assert accepted["state"] == "queued"
    assert accepted["status_url"] == f"/v1/jobs/{job_id}"
    assert r.headers["location"] == accepted["status_url"]

    job = wait_finished(client, job_id)
    assert job["state"] == "succeeded", job
    assert job["error"] is None
    assert job["progress"] == {"stage": "done", "percent": 100.0}
    assert job["filename"] == "my clip.mp4"
    result = AnalysisResult.model_validate(job["result"])
    assert result.video.filename == "my clip.mp4"
    # the task got a server path, not the upload object or the client's name
    stored = fake.calls[0]["path"]
    assert stored == Path(settings.data_dir).resolve() / "uploads" / job_id / "input.mp4"

    r = client.get(f"/v1/jobs/{job_id}/result.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == len(result.frames)

    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert not stored.parent.exists()
    _error(client.get(f"/v1/jobs/{job_id}"), 404, "job_not_found")
    _error(client.get(f"/v1/jobs/{job_id}/result.csv"), 404, "job_not_found")
    _error(client.delete(f"/v1/jobs/{job_id}"), 404, "job_not_found")


def test_include_blendshapes_option_reaches_the_pipeline(
    client: TestClient, fake: FakeAnalyzer, tiny_video: Path, auth_settings: ServiceSettings
) -> None:

    files = {"file": ("c.mp4", tiny_video.read_bytes(), "video/mp4")}
    r = client.post("/v1/analyze", files=files, data={"include_blendshapes": "true"})
    assert r.status_code == 202, r.text
    assert wait_finished(client, r.json()["job_id"])["state"] == "succeeded"
    assert fake.calls_in(auth_settings.data_dir)[-1]["config"].include_blendshapes is True
    r = client.post("/v1/analyze", files=files)
    assert wait_finished(client, r.json()["job_id"])["state"] == "succeeded"
    assert fake.calls_in(auth_settings.data_dir)[-1]["config"] is None  # the pipeline's defaults
    n = len(fake.calls_in(auth_settings.data_dir))
    _error(client.post("/v1/analyze", files=files, data={"include_blendshapes": "maybe"}),
           422, "invalid_option")  # fmt: skip
    assert len(fake.calls_in(auth_settings.data_dir)) == n
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert "include_blendshapes" in body["multipart/form-data"]["schema"]["properties"]


def test_neutral_stretch_reaches_the_pipeline_and_bad_ones_are_refused(
    client: TestClient, fake: FakeAnalyzer, tiny_video: Path, auth_settings: ServiceSettings
) -> None:

    files = {"file": ("c.mp4", tiny_video.read_bytes(), "video/mp4")}
    data = {"neutral_start_s": "0", "neutral_end_s": "0.2"}
    r = client.post("/v1/analyze", files=files, data=data)
    assert r.status_code == 202, r.text
    assert wait_finished(client, r.json()["job_id"])["state"] == "succeeded"
    config = fake.calls_in(auth_settings.data_dir)[-1]["config"]
    assert (config.neutral.start, config.neutral.end, config.neutral.unit) == (0.0, 0.2, "s")
    assert config.include_blendshapes is False
    n = len(fake.calls_in(auth_settings.data_dir))
    for bad in (
        {"neutral_start_s": "0"},  # one without the other
        {"neutral_start_s": "a", "neutral_end_s": "1"},
        {"neutral_start_s": "1", "neutral_end_s": "0.5"},  # ends before it starts
        {"neutral_start_s": "-1", "neutral_end_s": "0.5"},
        {"neutral_start_s": "nan", "neutral_end_s": "0.5"},
        {"neutral_start_s": "30", "neutral_end_s": "31"},  # after the 12-frame clip ends
    ):
        body = _error(client.post("/v1/analyze", files=files, data=bad), 422, "invalid_option")
        assert "neutral" in body["message"], body
    assert len(fake.calls_in(auth_settings.data_dir)) == n  # nothing was queued
    spec = client.get("/openapi.json").json()
    props = spec["paths"]["/v1/analyze"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["properties"]  # fmt: skip
    assert {"neutral_start_s", "neutral_end_s"} <= set(props)


def test_a_neutral_stretch_without_a_face_fails_the_job_saying_why(
    client: TestClient, fake: FakeAnalyzer, tiny_video: Path
) -> None:
    fake.mode, fake.code = "mer_error", "invalid_neutral_reference"
    files = {"file": ("c.mp4", tiny_video.read_bytes(), "video/mp4")}
    r = client.post(
        "/v1/analyze", files=files, data={"neutral_start_s": "0", "neutral_end_s": "0.1"}
    )
    job = wait_finished(client, r.json()["job_id"])
    assert job["state"] == "failed"
    assert job["error"]["code"] == "invalid_neutral_reference"


def test_client_filename_is_never_a_path(
    client: TestClient, fake: FakeAnalyzer, settings: ServiceSettings, tiny_video: Path
) -> None:
    uploads = Path(settings.data_dir).resolve() / "uploads"
    cases = {
        "../../../../etc/evil.mp4": ("evil.mp4", "input.mp4"),
        "..\\..\\win\\x.MOV": ("x.MOV", "input.mov"),
        "payload.exe": ("payload.exe", "input.bin"),
        " ..hidden.MP4": ("hidden.MP4", "input.mp4"),
    }
    for client_name, (shown, stored_name) in cases.items():
        r = upload(client, tiny_video, name=client_name)
        assert r.status_code == 202, r.text
        job = wait_finished(client, r.json()["job_id"])
        assert job["state"] == "succeeded"
        assert job["filename"] == shown
        stored = fake.calls[-1]["path"]
        assert stored.parent.parent == uploads and stored.name == stored_name
    assert not (Path(settings.data_dir).parent / "etc").exists()


def test_sanitize_filename() -> None:
    from service.upload import sanitize_filename, stored_suffix

    assert sanitize_filename("\x00a\x1fb\u202e.mp4") == "ab.mp4"
    assert sanitize_filename("C:\\x\\..\\y.avi") == "y.avi"
    assert sanitize_filename("") == "upload"
    assert sanitize_filename("../..") == "upload"
    long = sanitize_filename("a" * 1000 + ".mkv")
    assert len(long) == 200 and long.endswith(".mkv")
    assert stored_suffix("x.MKV") == ".mkv"
    assert stored_suffix("x.mp4.sh") == ".bin"
    assert stored_suffix("noext") == ".bin"


# -- synchronous rejections ------------------------------------------------------------


def test_rejections_then_valid_upload_succeeds(client: TestClient, tiny_video: Path) -> None:
    _error(upload(client, data=b"", name="empty.mp4"), 422, "empty_upload")
    _error(
        upload(client, data=b"hello, I am not a video\n" * 10, name="x.mp4"), 422, "invalid_video"
    )
    cut = tiny_video.read_bytes()[:300]
    body = _error(upload(client, data=cut, name="cut.mp4"), 422, "invalid_video")
    assert "container" in body["message"]
    _error(client.post("/v1/analyze", data={"other": "x"}), 422, "validation_error")
    _error(
        client.post("/v1/analyze", files={"video": ("a.mp4", b"1", "video/mp4")}),
        422,
        "validation_error",
    )
    _error(
        client.post("/v1/analyze", content=b"raw", headers={"content-type": "video/mp4"}),
        422,
        "validation_error",
    )
    r = upload(client, tiny_video)
    assert r.status_code == 202
    assert wait_finished(client, r.json()["job_id"])["state"] == "succeeded"


def test_rejected_uploads_leave_no_files(
    client: TestClient, settings: ServiceSettings, store: JobStore
) -> None:
    _error(upload(client, data=b"garbage" * 100, name="x.mp4"), 422, "invalid_video")
    uploads = Path(settings.data_dir) / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert list(store.iter_ids()) == []


def test_file_too_large(tmp_path: Path, tiny_video: Path, fake: FakeAnalyzer) -> None:
    settings = ServiceSettings(
        _env_file=None, data_dir=tmp_path, max_upload_bytes=1000, auth_enabled=False
    )
    with TestClient(create_app(settings)) as c:
        # the declared Content-Length is refused before reading
        _error(upload(c, tiny_video), 413, "file_too_large")

        # a chunked body without Content-Length is cut off while streaming
        def chunks() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
            for _ in range(100):
                yield b"x" * 100
            yield b"\r\n--b--\r\n"

        r = c.post(
            "/v1/analyze",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        _error(r, 413, "file_too_large")
    assert not any((tmp_path / "uploads").glob("*/*"))


# -- jobs: errors, failures, cancellation -----------------------------------------------


def test_unknown_job_ids(client: TestClient) -> None:
    for job_id in ("0" * 32, "nope", "...", "a" * 500):
        _error(client.get(f"/v1/jobs/{job_id}"), 404, "job_not_found")
        _error(client.delete(f"/v1/jobs/{job_id}"), 404, "job_not_found")
        _error(client.get(f"/v1/jobs/{job_id}/result.csv"), 404, "job_not_found")
    # an encoded slash does not match the route at all: still a JSON 404
    _error(client.get("/v1/jobs/..%2F..%2Fetc%2Fpasswd"), 404, "not_found")


def test_pipeline_error_code_is_recorded(
    client: TestClient, fake: FakeAnalyzer, tiny_video: Path
) -> None:
    fake.mode = "mer_error"
    job_id = upload(client, tiny_video).json()["job_id"]
    job = wait_finished(client, job_id)
    assert job["state"] == "failed"
    assert job["error"] == {"code": "no_face_detected", "message": "fake failure"}
    assert job["result"] is None
    _error(client.get(f"/v1/jobs/{job_id}/result.csv"), 409, "job_not_finished")


def test_internal_error_has_no_traceback_and_runner_survives(
    client: TestClient, fake: FakeAnalyzer, tiny_video: Path
) -> None:
    fake.mode = "crash"
    job = wait_finished(client, upload(client, tiny_video).json()["job_id"])
    assert job["state"] == "failed"
    assert job["error"]["code"] == "internal_error"
    assert "Traceback" not in job["error"]["message"]
    assert "/etc/passwd" not in job["error"]["message"]
    fake.mode = "ok"
    job = wait_finished(client, upload(client, tiny_video).json()["job_id"])
    assert job["state"] == "succeeded"


def test_cancel_running_job(
    client: TestClient,
    fake: FakeAnalyzer,
    settings: ServiceSettings,
    store: JobStore,
    tiny_video: Path,
) -> None:
    fake.mode = "block"
    job_id = upload(client, tiny_video).json()["job_id"]
    assert fake.started.wait(10)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "running"
    assert job["progress"]["stage"] in ("decode", "au")
    _error(client.get(f"/v1/jobs/{job_id}/result.csv"), 409, "job_not_finished")

    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    _error(client.get(f"/v1/jobs/{job_id}"), 404, "job_not_found")
    assert not (Path(settings.data_dir).resolve() / "uploads" / job_id).exists()
    # the worker notices, stops, and does not resurrect the record; the next job runs
    fake.mode = "ok"
    job = wait_finished(client, upload(client, tiny_video).json()["job_id"])
    assert job["state"] == "succeeded"
    assert store.get(job_id) is None and store.get_result(job_id) is None


def test_cancelled_by_flag_ends_cancelled(
    client: TestClient, fake: FakeAnalyzer, store: JobStore, tiny_video: Path
) -> None:
    fake.mode = "block"
    job_id = upload(client, tiny_video).json()["job_id"]
    assert fake.started.wait(10)
    store.request_cancel(job_id)
    job = wait_finished(client, job_id, timeout_s=20)
    assert job["state"] == "cancelled"
    assert job["error"]["code"] == "job_cancelled"


def test_job_records_survive_restart(
    settings: ServiceSettings, fake: FakeAnalyzer, tiny_video: Path
) -> None:
    with TestClient(create_app(settings)) as c:
        job_id = upload(c, tiny_video).json()["job_id"]
        assert wait_finished(c, job_id)["state"] == "succeeded"
    with TestClient(create_app(settings)) as c:
        job = c.get(f"/v1/jobs/{job_id}").json()
        assert job["state"] == "succeeded" and job["result"] is not None


def test_queued_jobs_are_requeued_after_restart(
    settings: ServiceSettings, tiny_video: Path
) -> None:
    from workers.jobstore import JobRecord, make_job_store, new_job_id

    store = make_job_store(settings)
    job_id = new_job_id()
    dest = Path(settings.data_dir).resolve() / "uploads" / job_id
    dest.mkdir(parents=True)
    (dest / "input.mp4").write_bytes(tiny_video.read_bytes())
    store.create(JobRecord(id=job_id, filename="t.mp4", upload_path=str(dest / "input.mp4")))
    analyzer = FakeAnalyzer()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks, "load_analyzer", lambda: analyzer)
        with TestClient(create_app(settings)) as c:
            assert wait_finished(c, job_id)["state"] == "succeeded"


# -- error envelope ----------------------------------------------------------------------


def test_every_error_is_code_and_message(settings: ServiceSettings) -> None:
    app = create_app(settings)

    @app.get("/_test/int/{n}")
    def needs_int(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/_test/boom")
    def boom() -> dict[str, int]:
        raise RuntimeError("secret detail")

    with TestClient(app, raise_server_exceptions=False) as c:
        _error(c.get("/_test/int/abc"), 422, "validation_error")
        body = _error(c.get("/_test/boom"), 500, "internal_error")
        assert "secret" not in body["message"]
        _error(c.get("/no/such/route"), 404, "not_found")
        _error(c.put("/v1/analyze"), 405, "method_not_allowed")


# -- run_job: leases and store failures ----------------------------------------------------


def test_run_job_lease_defers_a_live_attempt_and_takes_over_a_dead_one(
    settings: ServiceSettings, tiny_video: Path
) -> None:
    from datetime import timedelta

    from workers.jobstore import JobRecord, JobState, new_job_id, utcnow

    store = FileJobStore(Path(settings.data_dir) / "jobs", ttl_s=3600)
    s = settings.model_copy(update={"heartbeat_s": 1.0})
    job_id = new_job_id()
    store.create(JobRecord(id=job_id, filename="t.mp4", upload_path=str(tiny_video)))
    store.update(job_id, state=JobState.RUNNING, attempts=1, heartbeat_at=utcnow(), worker="h:1")
    analyzer = FakeAnalyzer()
    with pytest.raises(tasks.JobBusyError) as busy:
        tasks.run_job(job_id, str(tiny_video), "t.mp4", store=store, settings=s, analyzer=analyzer)
    assert 0 < busy.value.retry_in_s <= 3.0 and not analyzer.calls
    # the other attempt stops renewing its lease: after 3 heartbeats it is taken over
    store.update(job_id, heartbeat_at=utcnow() - timedelta(seconds=5))
    state = tasks.run_job(
        job_id, str(tiny_video), "t.mp4", store=store, settings=s, analyzer=analyzer
    )
    assert state == JobState.SUCCEEDED
    record = store.get(job_id)
    assert record.attempts == 2 and record.state == JobState.SUCCEEDED
    # the dead attempt, were it to finish late, cannot overwrite the outcome
    assert not store.update(
        job_id, only_if_state={JobState.RUNNING}, expect={"attempts": 1}, state=JobState.FAILED
    )
    # and a redelivery of the finished job is a no-op
    assert tasks.run_job(job_id, str(tiny_video), "t.mp4", store=store, settings=s) is None
    assert store.get(job_id) == record


def test_store_failure_mid_job_is_not_a_job_failure(
    settings: ServiceSettings, tiny_video: Path
) -> None:
    from workers.errors import StoreUnavailableError
    from workers.jobstore import JobRecord, JobState, new_job_id

    class FlakyStore(FileJobStore):
        def set_result(self, job_id: str, result_json: str) -> None:
            raise StoreUnavailableError("disk gone")

    store = FlakyStore(Path(settings.data_dir) / "jobs", ttl_s=3600)
    job_id = new_job_id()
    store.create(JobRecord(id=job_id, filename="t.mp4", upload_path=str(tiny_video)))
    with pytest.raises(StoreUnavailableError):
        tasks.run_job(
            job_id,
            str(tiny_video),
            "t.mp4",
            store=store,
            settings=settings,
            analyzer=FakeAnalyzer(),
        )
    record = store.get(job_id)
    assert record.state == JobState.RUNNING and record.error is None  # retried, not failed


def test_the_worker_stores_a_compact_results_json(
    settings: ServiceSettings, tiny_video: Path
) -> None:
    """The default analyzer is the compact pipeline; a compact result is stored as the JSON
    of its full AnalysisResult (the frames built a chunk at a time, never all held)."""
    import numpy as np

    from mer.pipeline import CompactResult, FrameTable, analyze_video_compact
    from mer.schemas import AU_NAMES
    from workers.jobstore import JobRecord, JobState, new_job_id

    assert tasks.load_analyzer() is analyze_video_compact
    full = fake_result("t.mp4", frames=1200)  # more than one chunk of frames
    table = FrameTable(
        timestamps_s=np.array([f.timestamp_s for f in full.frames]),
        face=np.array([f.face for f in full.frames]),
        confidence=np.array([f.confidence for f in full.frames]),
        apex_score=np.array([f.apex_score for f in full.frames]),
        au=np.array([[f.au[a] for a in AU_NAMES] for f in full.frames]),
    )
    compact = CompactResult(full.model_copy(update={"frames": []}), table)

    def analyzer(path: Path, **_: object) -> CompactResult:
        return compact

    store = FileJobStore(Path(settings.data_dir) / "jobs", ttl_s=3600)
    job_id = new_job_id()
    store.create(JobRecord(id=job_id, filename="t.mp4", upload_path=str(tiny_video)))
    state = tasks.run_job(
        job_id, str(tiny_video), "t.mp4", store=store, settings=settings, analyzer=analyzer
    )
    assert state == JobState.SUCCEEDED
    stored = store.get_result(job_id)
    assert stored == compact.to_result().model_dump_json()
    assert len(AnalysisResult.model_validate_json(stored or "").frames) == 1200
