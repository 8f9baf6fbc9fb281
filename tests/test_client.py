"""``mer.client`` and ``mer submit`` against the real service: uvicorn on 127.0.0.1 (a free
port, a subprocess) with the embedded runner, the real pipeline and authentication on;
the shipped sample clip is submitted, waited for, and its JSON and CSV fetched."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import REPO_ROOT, TEST_API_KEY
from helpers import check_single_face_result

from mer.client import Client, JobFailedError, ServiceError
from mer.schemas import CSV_COLUMNS
from mer.serving import free_port
from service.auth import hash_key

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``uvicorn service.main:app`` in a subprocess; its URL once ``/readyz`` answers."""
    tmp = tmp_path_factory.mktemp("service")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MER_")}
    env |= {
        "MER_DATA_DIR": str(tmp / "data"),
        "MER_AUTH_ENABLED": "true",
        "MER_API_KEYS": f"tester:{hash_key(TEST_API_KEY)}",
        "MER_LOG_LEVEL": "WARNING",
    }
    log = (tmp / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp / "uvicorn.log").read_text()
            assert time.monotonic() < deadline, "uvicorn did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_client_submit_wait_fetch_delete(service_url: str, sample_video: Path) -> None:
    sent: list[tuple[int, int]] = []
    polls: list[dict] = []
    with Client(service_url, api_key=TEST_API_KEY) as client:
        accepted = client.submit(sample_video, on_upload=lambda s, t: sent.append((s, t)))
        job_id = accepted["job_id"]
        assert accepted["status_url"] == f"/v1/jobs/{job_id}"
        size = sample_video.stat().st_size
        assert sent and sent[-1] == (size, size)

        done = client.wait(job_id, poll_s=0.3, timeout_s=300, on_poll=polls.append)
        assert done["state"] == "succeeded"
        assert polls[-1]["state"] == "succeeded"

        result = client.result(job_id)
        check_single_face_result(result.model_dump(mode="json"))
        assert result.video.filename == "single_face.mp4"

        rows = list(csv.reader(io.StringIO(client.result_csv(job_id))))
        assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 73

        client.delete(job_id)
        with pytest.raises(ServiceError) as info:
            client.job(job_id)
        assert (info.value.code, info.value.status_code) == ("job_not_found", 404)


def test_client_errors_carry_the_service_code(service_url: str, tmp_path: Path) -> None:
    with Client(service_url, api_key="wrong") as client, pytest.raises(ServiceError) as info:
        client.job("0" * 32)
    assert (info.value.code, info.value.status_code) == ("invalid_api_key", 401)
    assert info.value.message

    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with Client(service_url, api_key=TEST_API_KEY) as client:
        with pytest.raises(ServiceError) as info:
            client.submit(text)
        assert (info.value.code, info.value.status_code) == ("invalid_video", 422)

    with pytest.raises(ServiceError) as info, Client("http://127.0.0.1:9", timeout_s=2) as c:
        c.job("x")
    assert info.value.code == "connection_error"


def test_client_job_failure_is_an_exception(service_url: str, shared_data: Path) -> None:
    with Client(service_url, api_key=TEST_API_KEY) as client:
        job_id = client.submit(shared_data / "videos" / "no_face.mp4")["job_id"]
        with pytest.raises(JobFailedError) as info:
            client.wait(job_id, poll_s=0.3, timeout_s=300)
    assert info.value.code == "no_face_detected" and info.value.job["state"] == "failed"


def test_unversioned_alias_on_the_real_service(service_url: str, sample_video: Path) -> None:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with sample_video.open("rb") as fh:
        r = httpx.post(f"{service_url}/analyze", headers=headers,
                       files={"file": ("clip.mp4", fh, "video/mp4")}, timeout=60)  # fmt: skip
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    with Client(service_url, api_key=TEST_API_KEY) as client:
        client.wait(job_id, poll_s=0.3, timeout_s=300)
    r = httpx.get(f"{service_url}/jobs/{job_id}/result.csv", headers=headers)
    assert r.status_code == 200 and len(r.text.splitlines()) == 73
    assert httpx.delete(f"{service_url}/jobs/{job_id}", headers=headers).status_code == 204
    assert httpx.get(f"{service_url}/jobs/{job_id}", headers=headers).status_code == 404


def test_client_sends_the_options(service_url: str, sample_video: Path, tmp_path: Path) -> None:
    with Client(service_url, api_key=TEST_API_KEY) as client:
        job_id = client.submit(sample_video, neutral_s=(0.0, 0.2), include_blendshapes=True)[
            "job_id"
        ]
        assert client.wait(job_id, poll_s=0.3, timeout_s=300)["state"] == "succeeded"
        result = client.result(job_id)
        assert result.neutral is not None and result.neutral.source == "reference"
        assert result.neutral.end_s is not None and result.neutral.end_s <= 0.2 + 1e-6
        assert result.frames[0].blendshapes is not None
        with pytest.raises(ServiceError) as info:
            client.submit(sample_video, neutral_s=(1.0, 0.5))
        assert (info.value.code, info.value.status_code) == ("invalid_option", 422)
    out = tmp_path / "n.json"
    r = subprocess.run(
        [sys.executable, "-m", "mer.cli", "submit", str(sample_video), "--url", service_url,
         "--neutral", "0:0.2", "--json", str(out), "-q"],
        cwd=REPO_ROOT, env=os.environ | {"MER_API_KEY": TEST_API_KEY}, capture_output=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(out.read_text())["neutral"]["source"] == "reference"


def test_mer_submit_cli(service_url: str, sample_video: Path, tmp_path: Path) -> None:
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    env = os.environ | {"MER_API_KEY": TEST_API_KEY}
    r = subprocess.run(
        [sys.executable, "-m", "mer.cli", "submit", str(sample_video), "--url", service_url,
         "--json", str(out_json), "--csv", str(out_csv)],
        cwd=REPO_ROOT, env=env | {"TTY_COMPATIBLE": "1"}, capture_output=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode() + r.stdout.decode()
    assert b"succeeded" in r.stdout
    # the progress bar (as on a terminal): the file, the upload, then the job's stages
    # the bar names the file and ends at 100 % (its "upload" phase can be too short to draw)
    assert b"single_face.mp4" in r.stderr and b"100%" in r.stderr, r.stderr.decode()
    check_single_face_result(json.loads(out_json.read_text()))
    rows = list(csv.reader(io.StringIO(out_csv.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 73

    # without --wait: one "job_id<TAB>file" line per video
    r = subprocess.run(
        [sys.executable, "-m", "mer.cli", "submit", str(sample_video), "--url", service_url],
        cwd=REPO_ROOT, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    job_id, shown = r.stdout.decode().strip().split("\t")
    assert shown == str(sample_video)
    with Client(service_url, api_key=TEST_API_KEY) as client:
        assert client.wait(job_id, poll_s=0.3, timeout_s=300)["state"] == "succeeded"
    # a refused file exits 2 with the service's code
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 100)
    r = subprocess.run(
        [sys.executable, "-m", "mer.cli", "submit", str(bad), "--url", service_url],
        cwd=REPO_ROOT, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 2 and b"invalid_video" in r.stderr, r.stderr.decode()
    r = subprocess.run(
        [sys.executable, "-m", "mer.cli", "submit", str(sample_video), "--url", service_url,
         "--key", "wrong"],
        cwd=REPO_ROOT, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 2 and b"invalid_api_key" in r.stderr, r.stderr.decode()


def test_readme_client_example_runs(
    service_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("**Python client**", 1)[1].split("```python\n", 1)[1].split("```")[0]
    assert "http://127.0.0.1:8000" in block
    monkeypatch.chdir(REPO_ROOT)  # the example names samples/single_face.mp4
    exec(block.replace("http://127.0.0.1:8000", service_url), {"KEY": TEST_API_KEY})
    out = capsys.readouterr().out
    assert "ApexFrame" in out or "frame=" in out, out
