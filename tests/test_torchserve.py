"""TorchServe serving: payloads, handler core, archives, the client backend, and a real
TorchServe on loopback ports.

The first part needs neither Java nor TorchServe (fake transports, a closed port). The
integration part builds the archives from a tiny model store trained with ``mer train``,
starts a real TorchServe bound to 127.0.0.1 on free ports, compares it with the
in-process backend (max abs difference < 1e-4), checks that TorchServe formed batches
larger than 1, runs a real clip through a Celery worker with the TorchServe backend, and
stops TorchServe. It is skipped (with the reason) only where Java is missing; a missing
torchserve package skips it too, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import WorkerProcess

from mer.errors import InferenceUnavailableError, ModelUnavailableError
from mer.inference import AU_FILE, EMOTION_FILE, MODEL_SIZE, InProcessBackend, load_model
from mer.models.cards import write_random_checkpoints
from mer.serving import (
    SERVED,
    PayloadError,
    ServeConfig,
    ServedModel,
    TorchServeProcess,
    build_archives,
    decode_sample,
    encode_sample,
    free_port,
    java_available,
    start_torchserve,
    torchserve_available,
)
from mer.settings import Settings
from service.errors import http_status
from service.settings import ServiceSettings
from workers.inference import (
    TorchServeBackend,
    default_management_url,
    get_backend,
)
from workers.settings import WorkerSettings

M = MODEL_SIZE


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


def _need_archiver() -> None:
    if not torchserve_available():
        _missing("torchserve / torch-model-archiver are not installed (pip install -e '.[serve]')")


@pytest.fixture(scope="module")
def random_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoints(tmp_path_factory.mktemp("random_store"), version="0.0.1")


def _inputs(n_pairs: int, n_clips: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # AU inputs with the flow channels (frame, reference, u, v), as the random store's card
    pairs = rng.integers(0, 256, (n_pairs, 4, 1, M, M), dtype=np.uint8)
    dssi = rng.integers(0, 256, (n_clips, 4, 3, M, M), dtype=np.uint8)  # DSSI + flow u, v
    return pairs, dssi


# --- payload and handler core (no TorchServe) ---------------------------------------------


def test_payload_round_trip_and_rejections() -> None:
    x = (np.arange(2 * M * M) % 251).astype(np.uint8).reshape(2, 1, M, M)
    body = encode_sample(x)
    assert len(body) < 2 * M * M + 200  # raw bytes plus the small .npy header
    np.testing.assert_array_equal(decode_sample(body, x.shape), x)
    np.testing.assert_array_equal(decode_sample({"body": bytearray(body)}), x)
    with pytest.raises(PayloadError, match="shape"):
        decode_sample(body, (4, 1, M, M))
    floats = io.BytesIO()
    np.save(floats, x.astype(np.float32))
    with pytest.raises(PayloadError, match="uint8"):
        decode_sample(floats.getvalue())
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(PayloadError, match="not a .npy"):
        decode_sample(pickled.getvalue())
    with pytest.raises(PayloadError):
        decode_sample(b"garbage")
    with pytest.raises(PayloadError, match="uint8"):
        encode_sample(x.astype(np.float32))


def test_handler_core_one_response_per_request_same_as_inprocess(random_store: Path) -> None:
    au = ServedModel.load(SERVED["au_detector"], random_store / AU_FILE)
    emo = ServedModel.load(SERVED["sma_stn"], random_store / EMOTION_FILE)
    pairs, dssi = _inputs(5, 3)
    bodies: list[object] = [encode_sample(p) for p in pairs]
    bodies.insert(2, b"not npy")
    bodies.append(encode_sample(dssi[0]))  # the other model's shape
    res = au.handle(bodies)
    assert len(res.responses) == len(bodies) == len(res.statuses) == 7
    assert [s[0] for s in res.statuses] == [200, 200, 400, 200, 200, 200, 400]
    assert "error" in res.responses[2] and "shape" in res.responses[6]["error"]
    good = [r for r in res.responses if "probs" in r]
    assert all(r["batch_size"] == 5 and r["model"] == "au_detector" for r in good)
    inproc = InProcessBackend(load_model(random_store / EMOTION_FILE),
                              load_model(random_store / AU_FILE))  # fmt: skip
    want = inproc.predict_au(pairs)
    got = np.array([r["probs"] for r in good], np.float32)
    assert np.abs(got - want).max() < 1e-4
    e = emo.handle([encode_sample(d) for d in dssi])
    got_e = np.array([r["probs"] for r in e.responses], np.float32)
    assert np.abs(got_e - inproc.predict_emotion(dssi)).max() < 1e-4
    assert np.allclose(got_e.sum(1), 1.0, atol=1e-5)
    d = au.describe()
    assert d["sample_shape"] == [4, 1, M, M] and d["batch_sizes"] == {"5": 1}
    assert d["card"]["labels"][0] == "AU01" and len(d["sha256"]) == 64
    with pytest.raises(ModelUnavailableError, match="not emotion"):
        ServedModel.load(SERVED["sma_stn"], random_store / AU_FILE)
    # the CUDA worker's in-process backend runs the same code on any device
    dev = InProcessBackend(
        load_model(random_store / EMOTION_FILE), load_model(random_store / AU_FILE),
        batch_size=2, device="cpu",
    )  # fmt: skip
    assert np.abs(dev.predict_au(pairs) - want).max() < 1e-4


def test_get_backend_inprocess(tmp_path: Path, random_store: Path) -> None:
    assert get_backend(WorkerSettings(_env_file=None, model_dir=tmp_path)) is None  # type: ignore[call-arg]
    b = get_backend(WorkerSettings(_env_file=None, model_dir=random_store))  # type: ignore[call-arg]
    assert isinstance(b, InProcessBackend) and b.au is not None


def test_default_management_url() -> None:
    assert default_management_url("http://127.0.0.1:8080") == "http://127.0.0.1:8081"
    assert default_management_url("http://ts:9000/") == "http://ts:9001"
    assert default_management_url("http://[::1]:8080") == "http://[::1]:8081"


def _describe(name: str, random_store: Path) -> dict:
    spec = SERVED[name]
    served = ServedModel.load(spec, random_store / spec.checkpoint)
    return {"modelName": name, "modelVersion": "0.0.1", "workers": [{"status": "READY"}],
            "customizedMetadata": json.dumps(served.describe())}  # fmt: skip


def _fake_torchserve(random_store: Path, predict: Callable[[str, bytes], httpx.Response]):
    au = ServedModel.load(SERVED["au_detector"], random_store / AU_FILE)
    desc = {"au_detector": _describe("au_detector", random_store)}
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls.append(f"{request.method} {path}")
        if path == "/ping":
            return httpx.Response(200, json={"status": "Healthy"})
        if path.startswith("/models/"):
            name = path.rsplit("/", 1)[1]
            return httpx.Response(200, json=[desc[name]]) if name in desc else httpx.Response(
                404, json={"code": 404, "message": f"Model not found: {name}"})  # fmt: skip
        if path.startswith("/predictions/"):
            resp = predict(path, request.content)
            if resp.status_code == 200:
                r = au.handle([request.content])
                return httpx.Response(200, json=r.responses[0])
            return resp
        return httpx.Response(404)

    return httpx.MockTransport(handler), calls


def test_backend_retries_with_backoff_then_succeeds(random_store: Path) -> None:
    failures = {"left": 3}

    def predict(path: str, body: bytes) -> httpx.Response:
        if failures["left"] > 0:
            failures["left"] -= 1
            return httpx.Response(503, json={"message": "Model au_detector has no worker"})
        return httpx.Response(200)

    transport, calls = _fake_torchserve(random_store, predict)
    b = TorchServeBackend("http://ts:8080", retries=3, backoff_s=0.01, concurrency=1,
                          transport=transport)  # fmt: skip
    state = b.ensure_ready()
    assert state.models == {"sma_stn": "missing", "au_detector": "ready"}
    assert b.emotion is None and b.au is not None and b.au.meta.labels[0] == "AU01"
    assert len(b.au.sha256) == 64 and b.au.info.task == "au" and b.au.info.method == "learned"
    pairs, _ = _inputs(3, 0)
    got = b.predict_au(pairs)
    want = InProcessBackend(None, load_model(random_store / AU_FILE)).predict_au(pairs)
    assert np.abs(got - want).max() < 1e-4
    assert sum(c.startswith("POST") for c in calls) == 3 + 3  # 3 retried 503s, 3 successes
    assert b.batch_sizes() == {1: 3}
    b.close()


def test_backend_gives_up_after_retries_and_rejects_without_retry(random_store: Path) -> None:
    transport, calls = _fake_torchserve(
        random_store, lambda p, b: httpx.Response(503, json={"message": "busy"})
    )
    b = TorchServeBackend("http://ts:8080", retries=2, backoff_s=0.01, transport=transport)
    b.ensure_ready()
    pairs, _ = _inputs(4, 0)
    with pytest.raises(InferenceUnavailableError, match="after 3 tries") as err:
        b.predict_au(pairs)
    assert err.value.code == "inference_unavailable"
    assert sum(c.startswith("POST") for c in calls) <= 4 * 3

    transport, calls = _fake_torchserve(
        random_store, lambda p, b: httpx.Response(400, json={"error": "bad shape"})
    )
    b = TorchServeBackend("http://ts:8080", retries=5, backoff_s=0.01, transport=transport)
    b.ensure_ready()
    with pytest.raises(InferenceUnavailableError, match="rejected"):
        b.predict_au(pairs[:1])
    assert sum(c.startswith("POST") for c in calls) == 1  # a 400 is not retried


def test_torchserve_down_fails_fast_with_a_clear_code() -> None:
    port = free_port()  # nothing listens there
    b = TorchServeBackend(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.05)
    t0 = time.monotonic()
    state = b.readiness()
    assert not state.ready and "unreachable" in state.detail
    with pytest.raises(InferenceUnavailableError, match="unavailable after 3 tries") as err:
        b.ensure_ready()
    assert err.value.code == "inference_unavailable" and http_status(err.value) == 503
    assert time.monotonic() - t0 < 10


def test_job_fails_with_inference_unavailable_when_torchserve_is_down(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    from helpers import make_video

    from workers.jobstore import JobRecord, JobState, make_job_store, new_job_id
    from workers.tasks import run_job

    s = settings.model_copy(update={
        "inference_backend": "torchserve", "torchserve_url": f"http://127.0.0.1:{free_port()}",
        "torchserve_retries": 1, "torchserve_backoff_s": 0.05,
    })  # fmt: skip
    store = make_job_store(s)
    video = make_video(tmp_path / "input.mp4")
    job_id = new_job_id()
    store.create(JobRecord(id=job_id, filename="input.mp4", upload_path=str(video)))
    assert run_job(job_id, str(video), "input.mp4", store=store, settings=s) == JobState.FAILED
    record = store.get(job_id)
    assert record is not None and record.error is not None
    assert record.error.code == "inference_unavailable"
    assert "unreachable" in record.error.message


def test_build_archives(random_store: Path, tmp_path: Path) -> None:
    _need_archiver()
    built = build_archives(random_store, tmp_path / "mar")
    assert [p.name for p in built] == ["sma_stn.mar", "au_detector.mar"]
    with zipfile.ZipFile(built[1]) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("MAR-INF/MANIFEST.json"))
        config = z.read("au_detector.yaml").decode()
    assert {"au_detector.pt", "au_detector_handler.py", "mer_handler.py"} <= names
    assert manifest["model"]["handler"] == "au_detector_handler.py"
    assert manifest["model"]["modelVersion"] == "0.0.1"
    assert "batchSize:" in config and "maxBatchDelay:" in config and "minWorkers:" in config
    with pytest.raises(ModelUnavailableError, match="no checkpoint"):
        build_archives(tmp_path / "empty", tmp_path / "mar2")
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        build_archives(tmp_path / "empty", tmp_path / "mar2", ["sma_stn"])


# --- a real TorchServe --------------------------------------------------------------------


@pytest.fixture(scope="module")
def torchserve(
    trained_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TorchServeProcess]:
    """TorchServe with both archives, every address on 127.0.0.1, free ports."""
    if java_available() is None:
        pytest.skip("Java is not installed: TorchServe needs Java 17")
    _need_archiver()
    from typer.testing import CliRunner

    from mer.cli import app

    work = tmp_path_factory.mktemp("torchserve")
    res = CliRunner().invoke(app, ["model-store", "build", "--model-dir", str(trained_store),
                                   "--out", str(work / "store")])  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = ServeConfig(
        model_store=work / "store", inference_port=0, management_port=0, metrics_port=0,
        grpc_inference_port=0, grpc_management_port=0, worker_port=0,
        models={name: f"{name}.mar" for name in SERVED},
    )  # fmt: skip
    ts = start_torchserve(cfg, work / "run", env={"MER_TS_TORCH_THREADS": "1"})
    try:
        ts.wait_ready(SERVED, timeout_s=90)
        yield ts
    finally:
        ts.stop()
        assert ts.proc.poll() is not None, "TorchServe did not stop"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{ts.inference_url}/ping", timeout=2)


@pytest.mark.slow
@pytest.mark.media
def test_torchserve_config_binds_loopback(torchserve: TorchServeProcess) -> None:
    props = (torchserve.workdir / "config.properties").read_text()
    for key in ("inference_address", "management_address", "metrics_address"):
        assert f"{key}=http://127.0.0.1:" in props
    assert "grpc_inference_address=127.0.0.1" in props
    assert "enable_model_api=true" in props and "disable_token_authorization=true" in props


@pytest.mark.slow
@pytest.mark.media
def test_torchserve_backend_matches_inprocess_and_batches(
    torchserve: TorchServeProcess, trained_store: Path
) -> None:
    b = TorchServeBackend(torchserve.inference_url, torchserve.management_url, concurrency=32)
    try:
        state = b.ensure_ready()
        assert state.ready and state.models == {"sma_stn": "ready", "au_detector": "ready"}
        inproc = InProcessBackend(load_model(trained_store / EMOTION_FILE),
                                  load_model(trained_store / AU_FILE))  # fmt: skip
        assert b.au is not None and b.au.sha256 == inproc.au.sha256  # type: ignore[union-attr]
        assert b.emotion is not None and b.emotion.meta.labels == inproc.emotion.meta.labels  # type: ignore[union-attr]
        pairs, dssi = _inputs(96, 12, seed=1)
        got_au, got_emo = b.predict_au(pairs), b.predict_emotion(dssi)
        assert np.abs(got_au - inproc.predict_au(pairs)).max() < 1e-4
        assert np.abs(got_emo - inproc.predict_emotion(dssi)).max() < 1e-4
        sizes = b.batch_sizes()
        assert sum(sizes.values()) == 96 + 12
        assert max(sizes) > 1, f"TorchServe formed no batch larger than 1: {sizes}"
        # a malformed request gets its own 400; the samples batched with it still answer
        url = f"{torchserve.inference_url}/predictions/au_detector"
        hdr = {"Content-Type": "application/octet-stream"}
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            bodies = [b"garbage"] + [encode_sample(p) for p in pairs[:7]]
            answers = pool.map(lambda body: httpx.post(url, content=body, headers=hdr, timeout=30),
                               bodies)  # fmt: skip
            codes = [a.status_code for a in answers]
        assert codes == [400] + [200] * 7
    finally:
        b.close()


@pytest.mark.slow
@pytest.mark.media
@pytest.mark.redis
def test_worker_runs_a_real_clip_with_the_torchserve_backend(
    torchserve: TorchServeProcess,
    trained_store: Path,
    redis_url: str,
    auth_settings: ServiceSettings,
    api_key: str,
    start_worker: Callable[..., WorkerProcess],
    single_face_video: Path,
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient
    from helpers import upload, wait_finished

    from mer.pipeline import analyze_video
    from service.main import create_app
    from workers.runner import CeleryRunner

    settings = auth_settings.model_copy(update={"broker_url": redis_url, "redis_url": redis_url})
    queue = f"mer-ts-{uuid.uuid4().hex[:8]}"
    empty = tmp_path / "no_weights_here"
    empty.mkdir()
    worker = start_worker(settings, queue, env={
        "MER_INFERENCE_BACKEND": "torchserve",
        "MER_TORCHSERVE_URL": torchserve.inference_url,
        "MER_TORCHSERVE_MANAGEMENT_URL": torchserve.management_url,
        "MER_MODEL_DIR": str(empty),  # the worker needs no weights: cards come from TorchServe
    })  # fmt: skip
    app = create_app(settings, runner=CeleryRunner(settings, queue=queue))
    before = _server_batch_sizes(torchserve, "au_detector")
    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:
        r = upload(client, single_face_video)
        assert r.status_code == 202, r.text
        job = wait_finished(client, r.json()["job_id"], timeout_s=180)
    assert job["state"] == "succeeded", f"{job}\n{worker.log()[-4000:]}"
    remote = job["result"]
    in_process = Settings(_env_file=None, model_dir=trained_store)  # type: ignore[call-arg]
    local = analyze_video(single_face_video, settings=in_process)
    # AU scores: the learned detector blended with the FACS rules (both listed)
    models = {(m["task"], m["method"]): m for m in remote["models"]}
    assert models[("au", "learned")]["name"] == "au_detector"
    assert ("au", "rules") in models
    assert models[("au", "learned")]["sha256"] == next(
        m.sha256 for m in local.models if m.task == "au" and m.method == "learned"
    )
    assert remote["au_method"] == local.au_method
    au_remote = np.array([[f["au"][k] for k in sorted(f["au"])] for f in remote["frames"]])
    au_local = np.array([[f.au[k] for k in sorted(f.au)] for f in local.frames])
    assert au_remote.shape == au_local.shape == (72, 14)
    assert np.abs(au_remote - au_local).max() < 1e-4
    assert len(remote["intervals"]) == len(local.intervals) > 0
    for iv_r, iv_l in zip(remote["intervals"], local.intervals, strict=True):
        assert iv_r["emotion"] is not None and iv_l.emotion is not None
        p_r, p_l = iv_r["emotion"]["probabilities"], iv_l.emotion.probabilities
        assert p_r.keys() == p_l.keys()
        assert max(abs(p_r[k] - p_l[k]) for k in p_r) < 1e-4
    # TorchServe (server side) batched the worker's per-frame requests
    after = _server_batch_sizes(torchserve, "au_detector")
    new = {k: after[k] - before.get(k, 0) for k in after if after[k] > before.get(k, 0)}
    assert sum(k * v for k, v in new.items()) == sum(f["face"] for f in remote["frames"])
    assert max(new) > 1, f"no batch larger than 1 during the job: {new}"


def _server_batch_sizes(ts: TorchServeProcess, name: str) -> dict[int, int]:
    """The handler's batch-size counts, from the customised describe of ``name``."""
    desc = httpx.get(f"{ts.management_url}/models/{name}", params={"customized": "true"},
                     timeout=10).json()[0]  # fmt: skip
    meta = desc["customizedMetadata"]
    meta = json.loads(meta) if isinstance(meta, str) else meta
    return {int(k): int(v) for k, v in meta["batch_sizes"].items()}
