"""Fixtures of the stage tests: the real smile clip (single_face.mp4) run through the
streaming stages once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mer.pipeline.config import AnalysisConfig
from mer.video import DecodedFrame, iter_frames
from tests.pipeline.streaming import Streamed, run_streaming


@pytest.fixture(scope="session")
def smile_frames(single_face_video: Path) -> list[DecodedFrame]:
    """The 72 decoded frames of single_face.mp4 (30 fps; smiling ~20-68)."""
    return list(iter_frames(single_face_video))


@pytest.fixture(scope="session")
def smile_streamed(smile_frames: list[DecodedFrame]) -> Iterator[Streamed]:
    """:func:`run_streaming` on single_face.mp4 with the default configuration."""
    s = run_streaming(smile_frames, AnalysisConfig())
    yield s
    s.crops.close()
