"""The three settings classes: the science library's, the workers' and the API's, one
``MER_`` environment for all."""

from __future__ import annotations

import pytest

from mer.settings import Settings
from service.settings import ServiceSettings
from workers.settings import WorkerSettings


def test_each_layer_holds_its_own_fields() -> None:
    science = set(Settings.model_fields)
    worker = set(WorkerSettings.model_fields) - science
    service = set(ServiceSettings.model_fields) - science - worker
    assert {"max_upload_bytes", "model_dir", "landmarker", "emotion_min_score"} <= science
    assert not science & {"api_keys", "rate_limit", "broker_url", "torchserve_url", "data_dir"}
    assert {"broker_url", "data_dir", "heartbeat_s", "torchserve_url"} <= worker
    assert not worker & {"api_keys", "rate_limit", "auth_enabled"}
    assert {"api_keys", "rate_limit", "submit_rate_limit", "auth_enabled"} <= service
    assert issubclass(ServiceSettings, WorkerSettings) and issubclass(WorkerSettings, Settings)


def test_one_environment_configures_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MER_MAX_FRAMES", "123")
    monkeypatch.setenv("MER_BROKER_URL", "redis://example:6379/0")
    monkeypatch.setenv("MER_RATE_LIMIT", "7/minute")
    s = ServiceSettings(_env_file=None)  # type: ignore[call-arg]
    assert (s.max_frames, s.broker_url, s.rate_limit) == (123, "redis://example:6379/0", "7/minute")
    assert s.effective_redis_url == "redis://example:6379/0"
    w = WorkerSettings(_env_file=None)  # type: ignore[call-arg]
    assert (w.max_frames, w.broker_url) == (123, "redis://example:6379/0")
    assert Settings(_env_file=None).max_frames == 123  # type: ignore[call-arg]
