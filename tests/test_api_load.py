"""A small bounded run of ``bench/load_test.py`` in CI: the real API under uvicorn on
loopback, a real Celery worker process on the test Redis, 20 uploads from 4 concurrent
clients. Every upload must be accepted and every job must succeed; none may be lost or
duplicated. (The full run, 200 uploads from 16 clients, is ``bench/load_test.py``.)
"""

from __future__ import annotations

import importlib.util
import secrets
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO_ROOT

from service.auth import hash_key

pytestmark = [pytest.mark.redis, pytest.mark.media, pytest.mark.slow]


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("load_test", REPO_ROOT / "bench" / "load_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bounded_load_every_job_completes(
    redis_url: str, single_face_video: Path, tmp_path: Path
) -> None:
    bench = _load_bench()
    clip = bench.make_clip(single_face_video, tmp_path / "clip.mp4")
    key = "load-" + secrets.token_urlsafe(8)
    stack = bench.Stack(
        runner="celery",
        workers=1,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        api_key_line=f"load:{hash_key(key)}",
        quota=8,
        queue="mer",
    )
    with stack:
        summary = bench.run_load(
            stack.base_url, key, clip.read_bytes(), uploads=20, clients=4, timeout_s=240
        )
    print(summary)
    assert summary["accepted"] == 20 and summary["rejected"] == {}
    assert summary["duplicate_job_ids"] == 0
    assert summary["lost"] == 0
    assert summary["states"] == {"succeeded": 20}
    assert summary["jobs_per_s"] > 0
    assert summary["enqueue_latency_ms"]["p95"] >= summary["enqueue_latency_ms"]["p50"] > 0
    assert 'mer_jobs_finished_total{code="",state="succeeded"} 20.0' in summary["metrics_outcomes"]
