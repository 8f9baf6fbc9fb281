"""The containerised deployment: docker-compose.yml, the GPU override and the Dockerfiles.

These tests read the files (YAML structure, health checks, volumes, configuration by
environment, loopback-only published ports, the order of the Dockerfiles' layers). Where a
compose binary exists (``docker compose`` or ``docker-compose``), ``config`` must accept
the files as well; nothing is built or started here: ``scripts/compose_smoke.sh`` builds
the images and runs the stack (too slow for the test suite, see README).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml is not installed (pip install -e '.[serve]')")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
GPU = ROOT / "docker" / "compose.gpu.yml"
LOCAL = ROOT / "docker" / "compose.local.yml"


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_compose_services_health_checks_and_volumes() -> None:
    doc = _load(COMPOSE)
    services = doc["services"]
    assert {"redis", "api", "worker", "torchserve", "flower"} <= set(services)
    for name, svc in services.items():
        assert "test" in svc.get("healthcheck", {}), f"{name} has no health check"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        build = svc.get("build")
        if build:
            assert (ROOT / build["dockerfile"]).is_file()
    assert "ports" not in services["torchserve"], "TorchServe's APIs must stay internal"
    assert "uploads" in doc["volumes"]
    for name in ("api", "worker"):
        assert "uploads:/data" in services[name]["volumes"]
    worker = services["worker"]
    env = worker["environment"]
    assert env["MER_TORCHSERVE_URL"] == "http://torchserve:8080"
    assert env["MER_INFERENCE_BACKEND"].startswith("${MER_INFERENCE_BACKEND")
    assert env["MER_BROKER_URL"] == "redis://redis:6379/0"
    assert worker["depends_on"]["torchserve"]["condition"] == "service_healthy"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "-E" in worker["command"][-1] and "MER_WORKER_QUEUES" in worker["command"][-1]
    assert "/ping" in " ".join(services["torchserve"]["healthcheck"]["test"])
    assert "flower" in services["flower"]["command"]


def test_gpu_override_and_images() -> None:
    gpu = _load(GPU)["services"]
    for name in ("torchserve", "worker-cuda"):
        devices = gpu[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
        assert "TORCH_INDEX" in gpu[name]["build"]["args"]
    assert gpu["worker-cuda"]["environment"]["MER_INFERENCE_DEVICE"] == "cuda"
    ts = (ROOT / "docker" / "Dockerfile.torchserve").read_text()
    assert "openjdk-17-jre-headless" in ts and '["optional-dependencies"]["serve"]' in ts
    assert '"model-store", "serve"' in ts and '"0.0.0.0"' in ts
    api = (ROOT / "docker" / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX" in api and "MER_MODEL_DIR=/app/model_store" in api
    # the pipeline's threads each get a malloc arena: capped, a 10-minute video peaks at
    # 583 MB instead of 605 (bench/long_video_memory.py)
    env = next(s for s in _instructions(ROOT / "docker" / "Dockerfile") if s.startswith("ENV"))
    assert "MALLOC_ARENA_MAX=2" in env.split()


def _instructions(path: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.torchserve"])
def test_dockerfile_layers_keep_the_slow_ones_cached(name: str) -> None:
    """A code change rebuilds only the project's layers; another torch index only from torch."""
    steps = _instructions(ROOT / "docker" / name)

    def first(prefix: str) -> int:
        return next(i for i, s in enumerate(steps) if s.startswith(prefix))

    apt, arg = first("RUN apt-get"), first("ARG TORCH_INDEX")
    torch, deps = first("RUN pip install torch=="), first("COPY pyproject.toml")
    code = first("COPY . ")
    assert apt < arg < torch < deps < code, steps
    assert "tomllib" in steps[deps + 1], "the dependencies come from pyproject.toml alone"
    after_code = [s for s in steps[code + 1 :] if s.startswith("RUN")]
    assert after_code == ["RUN pip install --no-deps --no-build-isolation ."], after_code


def test_local_flower_does_not_share_torchserve_first_layer() -> None:
    """Built in parallel from one base, two equal first layers become twins, and a later
    build may take Flower's as TorchServe's cache and miss all of TorchServe's layers."""
    flower = _instructions(ROOT / "docker" / "local" / "Dockerfile.flower")
    ts = _instructions(ROOT / "docker" / "Dockerfile.torchserve")
    after_from = [steps[next(i for i, s in enumerate(steps) if s.startswith("FROM")) + 1]
                  for steps in (flower, ts)]  # fmt: skip
    assert after_from[0] != after_from[1]


def _compose_cmd() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_accepts_the_files() -> None:
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("no compose binary here (docker compose / docker-compose)")
    for files in (
        ["-f", str(COMPOSE)],
        ["-f", str(COMPOSE), "-f", str(GPU)],
        ["-f", str(COMPOSE), "-f", str(LOCAL)],
    ):
        res = subprocess.run([*cmd, *files, "config", "-q"], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)  # fmt: skip
        assert res.returncode == 0, res.stderr
