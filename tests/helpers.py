"""Helpers shared by the API, store and worker tests (imported as ``helpers``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mer.errors import JobCancelledError, MERError
from mer.schemas import AU_NAMES, AnalysisResult, ApexFrame, FrameResult, VideoInfo
from mer.settings import Settings

#: The smile of single_face.mp4 (72 frames) lies roughly within these frames.
SMILE_FRAMES = range(20, 56)


def wait_for(
    fetch: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float = 120.0,
    interval_s: float = 0.2,
) -> dict[str, Any]:
    """Call ``fetch`` until ``done(answer)``; fail after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = fetch()
        if done(last):
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s; last answer: {last}")


def upload(
    client: TestClient,
    path: Path | None = None,
    *,
    name: str | None = None,
    data: bytes | None = None,
    content_type: str = "video/mp4",
) -> Any:
    """POST a file (from ``path`` or raw ``data``) to ``/v1/analyze``; return the response."""
    payload = data if data is not None else Path(path).read_bytes()  # type: ignore[arg-type]
    filename = name or (Path(path).name if path is not None else "upload.mp4")
    return client.post("/v1/analyze", files={"file": (filename, payload, content_type)})


def wait_finished(client: TestClient, job_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{job_id}`` until the job is no longer queued or running."""

    def fetch() -> dict[str, Any]:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()

    return wait_for(fetch, lambda j: j["state"] not in ("queued", "running"), timeout_s)


def check_single_face_result(data: dict[str, Any]) -> AnalysisResult:
    """Validate a result of single_face.mp4: schema, 72 frames, apex in the smile, AU12."""
    result = AnalysisResult.model_validate(data)
    assert result.video.frame_count == 72
    assert len(result.frames) == 72
    assert result.apex is not None, "no apex found"
    assert result.apex.frame in SMILE_FRAMES, f"apex at frame {result.apex.frame}"
    by_index = {f.frame: f for f in result.frames}
    au12_apex = by_index[result.apex.frame].au["AU12"]
    au12_start = by_index[0].au["AU12"]
    assert au12_apex > au12_start + 0.2, (
        f"AU12 at the apex (frame {result.apex.frame}) is {au12_apex:.3f}, "
        f"at frame 0 {au12_start:.3f}"
    )
    return result


def make_video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """Encode a small synthetic MPEG-4 video (moving gradient) at ``path``."""
    import av
    import numpy as np

    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[..., 0] = (np.arange(width) * 4 + i * 10) % 256
            img[..., 1] = (np.arange(height)[:, None] * 5) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def fake_result(filename: str = "clip.mp4", frames: int = 3) -> AnalysisResult:
    """A small valid :class:`AnalysisResult` (no science)."""
    return AnalysisResult(
        video=VideoInfo(
            filename=filename,
            sha256="0" * 64,
            fps=10.0,
            frame_count=frames,
            width=64,
            height=48,
            duration_s=frames / 10,
            codec="mpeg4",
        ),
        frames=[
            FrameResult(
                frame=i,
                timestamp_s=i / 10,
                face=i != 1,
                confidence=0.9 if i != 1 else 0.0,
                apex_score=i / max(1, frames - 1),
                au={name: 0.1 * (i % 10) for name in AU_NAMES},
            )
            for i in range(frames)
        ],
        apex=ApexFrame(frame=frames - 1, timestamp_s=(frames - 1) / 10, score=1.0),
        intervals=[],
        au_method="fake",
        models=[],
        timings_ms={"total": 1.0},
    )


class FakeAnalyzer:
    """Stands in for ``mer.pipeline.analyze_video`` in API tests.

    ``mode``: ``ok`` (returns :func:`fake_result`), ``mer_error`` (raises a MERError with
    ``code``), ``crash`` (raises RuntimeError), ``block`` (reports progress until
    cancelled or ``release`` is set, then returns).
    """

    def __init__(self, mode: str = "ok", code: str = "no_face_detected") -> None:
        self.mode = mode
        self.code = code
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls: list[dict[str, Any]] = []

    def calls_in(self, data_dir: str | Path) -> list[dict[str, Any]]:
        """The calls on uploads under ``data_dir``: one test's own (a job thread of an
        earlier test's app may still be finishing, and it calls the patched analyzer too)."""
        root = Path(data_dir).resolve()
        return [c for c in self.calls if root in Path(c["path"]).resolve().parents]

    def __call__(
        self,
        path: Path,
        *,
        settings: Settings | None = None,
        filename: str | None = None,
        progress: Callable[[str, float], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        backend: Any = None,
        config: Any = None,
    ) -> AnalysisResult:
        self.calls.append(
            {"path": path, "filename": filename, "backend": backend, "config": config}
        )
        assert isinstance(path, Path) and path.is_file()
        if progress:
            progress("decode", 10.0)
        self.started.set()
        if self.mode == "mer_error":
            raise MERError("fake failure", code=self.code)
        if self.mode == "crash":
            raise RuntimeError("secret internal detail /etc/passwd")
        if self.mode == "block":
            deadline = time.monotonic() + 30
            while not self.release.is_set() and time.monotonic() < deadline:
                if should_cancel and should_cancel():
                    raise JobCancelledError("the job was cancelled")
                if progress:
                    progress("au", 50.0)
                time.sleep(0.02)
        if progress:
            progress("done", 100.0)
        return fake_result(filename or path.name)
