"""Runs the streaming stages (tracking + alignment with motion alongside) on a list of frames,
as :func:`mer.pipeline.analyze_frames` does; shared by the stage tests."""

from __future__ import annotations

from dataclasses import dataclass

from mer.pipeline.config import AnalysisConfig
from mer.pipeline.crops import CropStore
from mer.pipeline.motion import MotionResult, MotionStage
from mer.pipeline.track import FaceTrack, TrackAlign, thread_landmarker
from mer.video import DecodedFrame


@dataclass
class Streamed:
    """The streaming stages' outputs on one clip."""

    track: FaceTrack
    motion: MotionResult
    crops: CropStore
    emitted: list[tuple[int, bool, int]]  # (frame, had a crop, frames pushed by then)
    cfg: AnalysisConfig


def run_streaming(frames: list[DecodedFrame], cfg: AnalysisConfig) -> Streamed:
    """Tracking + alignment with motion fed alongside, as :func:`analyze_frames` does."""
    crops = CropStore(cfg.crop_size)
    motion_stage = MotionStage(cfg, 30.0)
    emitted: list[tuple[int, bool, int]] = []
    pushed = [0]

    def sink(index: int, crop: object) -> None:
        emitted.append((index, crop is not None, pushed[0]))
        motion_stage.push(index, crop)  # type: ignore[arg-type]

    stage = TrackAlign(thread_landmarker("mediapipe", cfg), cfg, crops, sink)
    for fr in frames:
        pushed[0] += 1
        stage.push(fr)
    track = stage.finish()
    return Streamed(track, motion_stage.finish(track), crops, emitted, cfg)
