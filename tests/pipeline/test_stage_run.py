"""The stages run end to end (mer.pipeline.run): cancellation, errors, resources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mer.errors import JobCancelledError, NoFaceDetectedError
from mer.pipeline import crops as crops_module
from mer.pipeline import run as run_module
from mer.pipeline.run import analyze_frames
from mer.settings import Settings
from mer.video import DecodedFrame


@pytest.fixture
def opened_stores(monkeypatch: pytest.MonkeyPatch) -> list[crops_module.CropStore]:
    """Every CropStore the pipeline opens during the test."""
    stores: list[crops_module.CropStore] = []

    class Recorded(crops_module.CropStore):
        def __init__(self, size: int) -> None:
            super().__init__(size)
            stores.append(self)

    monkeypatch.setattr(run_module, "CropStore", Recorded)
    return stores


def test_a_cancelled_run_releases_its_crop_store(
    smile_frames: list[DecodedFrame], opened_stores: list, tmp_path: Path
) -> None:
    calls = [0]

    def cancel() -> bool:
        calls[0] += 1
        return calls[0] > 2  # after 32 frames

    with pytest.raises(JobCancelledError):
        analyze_frames(
            smile_frames, fps=30, should_cancel=cancel, settings=Settings(model_dir=tmp_path)
        )
    assert len(opened_stores) == 1 and opened_stores[0].closed


def test_no_face_raises_and_releases_its_crop_store(
    smile_frames: list[DecodedFrame], opened_stores: list, tmp_path: Path
) -> None:
    black = np.zeros_like(smile_frames[0].image)
    frames = [DecodedFrame(i, i / 30, black) for i in range(10)]
    with pytest.raises(NoFaceDetectedError):
        analyze_frames(frames, fps=30, settings=Settings(model_dir=tmp_path))
    assert len(opened_stores) == 1 and opened_stores[0].closed


def test_stage_timings_and_progress(
    smile_frames: list[DecodedFrame], opened_stores: list, tmp_path: Path
) -> None:
    seen: list[tuple[str, float]] = []
    r = analyze_frames(
        smile_frames, fps=30, expected_frames=72, settings=Settings(model_dir=tmp_path),
        progress=lambda stage, pct: seen.append((stage, pct)),
    )  # fmt: skip
    assert opened_stores[0].closed
    stages = [s for s, _ in seen]
    assert stages[0] == "landmarks" and stages[-1] == "done"
    assert {"spotting", "au", "emotion"} <= set(stages)
    pcts = [p for _, p in seen]
    assert pcts == sorted(pcts) and pcts[-1] == 100.0
    want = {"decode", "landmarks", "alignment", "motion", "au", "spotting", "emotion", "total"}
    assert want <= set(r.timings_ms)
    assert [m.task for m in r.models][:2] == ["landmarks", "apex"]
