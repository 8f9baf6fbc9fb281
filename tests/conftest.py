"""Shared fixtures: media from ``../shared/data``, a real Redis, per-test settings.

Missing media or an unreachable Redis skip the tests that need them with a clear reason,
except when the ``CI`` environment variable is set: then they fail, so CI cannot pass
silently without them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

from mer.settings import Settings  # noqa: E402

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
REDIS_TEST_URL = os.environ.get("MER_REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def _missing(reason: str) -> None:
    """Skip with ``reason``, or fail when running under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data`` (the real face media)."""
    if not (SHARED_DATA / "videos").is_dir():
        _missing(f"shared media not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def single_face_video(shared_data: Path) -> Path:
    """72 frames, one man: neutral -> smile -> neutral."""
    path = shared_data / "videos" / "single_face.mp4"
    if not path.is_file():
        _missing(f"{path} is missing")
    return path


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
def settings(tmp_path: Path) -> Settings:
    """Settings for one test: data under ``tmp_path``, embedded runner, file store."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        broker_url=None,
        redis_url=None,
    )
