"""Stage 6, result assembly: the stages' arrays -> :class:`mer.pipeline.output.CompactResult`
(a :class:`mer.schemas.AnalysisResult` whose per-frame part stays as arrays).

Rounds the outputs, names each interval ``micro`` (onset-to-offset <= 0.5 s,
MEGC) or ``macro``, lists its AUs scoring >= 0.5 at the apex, and picks the video's emotion:
the strongest interval's when it is emotional and its probability reaches
``emotion_min_score``; else ``emotion`` is None and ``emotion_reason`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer.pipeline.aus import AUResult
from mer.pipeline.emotion import EmotionResult
from mer.pipeline.motion import MotionResult
from mer.pipeline.output import CompactResult, FrameTable
from mer.pipeline.spotting import SpottingResult
from mer.pipeline.track import FaceTrack
from mer.schemas import (
    AU_NAMES,
    EXPRESSION_KINDS,
    NO_EMOTION,
    AnalysisResult,
    ApexFrame,
    EmotionPrediction,
    Interval,
    ModelInfo,
    VideoInfo,
)
from mer.spotting import MICRO_MAX_S

AU_PRESENT = 0.5  #: an AU is listed among an interval's ``top_aus`` from this score


@dataclass(frozen=True)
class SourceInfo:
    """What the result reports about the input (see :class:`mer.schemas.VideoInfo`)."""

    filename: str
    sha256: str = ""
    codec: str = "raw"
    rotation_deg: int = 0
    duration_s: float = 0.0  #: from the container; 0 = from the timestamps
    fps: float = 30.0  #: nominal frame rate (frames/s)


def frame_table(
    track: FaceTrack, spotting: SpottingResult, aus: AUResult, blendshapes: bool = False
) -> FrameTable:
    """The per-frame part of the result as arrays (``T`` rows; see :class:`FrameTable`),
    with the 52 blendshapes when ``blendshapes`` is set and they were computed."""
    return FrameTable(
        timestamps_s=np.asarray(track.timestamps_s, np.float64),
        face=np.asarray(track.valid, bool),
        confidence=np.asarray(track.confidence, np.float64),
        apex_score=np.asarray(spotting.score),
        au=aus.scores,
        blendshapes=track.blendshape_array() if blendshapes else None,
    )


def intervals_out(
    track: FaceTrack, spotting: SpottingResult, aus: AUResult, emotion: EmotionResult
) -> list[Interval]:
    """The spotted intervals as :class:`Interval` (seconds, kind, top AUs, emotion)."""
    ts, au = np.asarray(track.timestamps_s, np.float64).tolist(), aus.scores
    out = []
    for iv, emo in zip(spotting.intervals, emotion.predictions, strict=True):
        order = np.argsort(-au[iv.apex])
        dur = ts[iv.offset] - ts[iv.onset]
        out.append(
            Interval(
                onset=iv.onset,
                apex=iv.apex,
                offset=iv.offset,
                onset_s=round(ts[iv.onset], 6),
                apex_s=round(ts[iv.apex], 6),
                offset_s=round(ts[iv.offset], 6),
                duration_s=round(dur, 6),
                kind=iv.kind
                if iv.kind != "expression"
                else ("micro" if dur <= MICRO_MAX_S else "macro"),
                score=round(iv.score, 5),
                top_aus=[AU_NAMES[j] for j in order if au[iv.apex, j] >= AU_PRESENT],
                emotion=emo,
            )
        )
    return out


def video_emotion(
    intervals: list[Interval], reason: str | None, min_score: float
) -> tuple[EmotionPrediction | None, str | None]:
    """The video's emotion (the strongest interval's) and, when there is none, why."""
    expressions = [iv for iv in intervals if iv.kind in EXPRESSION_KINDS]
    if not expressions:
        return None, reason
    top = max(expressions, key=lambda iv: iv.score).emotion
    if top is None:
        return None, reason
    if top.label == NO_EMOTION:
        return (
            None,
            "the strongest movement is not emotional "
            "(no emotional AU pattern; speech, blink or head motion)",
        )
    if top.score < min_score:
        return None, (
            f"the strongest movement's emotion ({top.label}, p = {top.score:.2f}) is below "
            f"MER_EMOTION_MIN_SCORE = {min_score:g}; see the intervals"
        )
    return top, None


def assemble(
    source: SourceInfo,
    track: FaceTrack,
    motion: MotionResult,
    aus: AUResult,
    spotting: SpottingResult,
    emotion: EmotionResult,
    models: list[ModelInfo],
    warnings: list[str],
    timings_ms: dict[str, float],
    emotion_min_score: float,
    include_blendshapes: bool = False,
) -> CompactResult:
    """Build the result of one video from the outputs of every stage (its per-frame part
    as arrays: :meth:`CompactResult.to_result` gives the :class:`AnalysisResult`)."""
    ts = np.asarray(track.timestamps_s, np.float64).tolist()
    n = track.n_frames
    intervals = intervals_out(track, spotting, aus, emotion)
    top_emotion, reason = video_emotion(intervals, emotion.reason, emotion_min_score)
    apex_i = spotting.apex_frame(np.asarray(track.valid))
    apex = ApexFrame(
        frame=apex_i,
        timestamp_s=round(ts[apex_i], 6),
        score=round(float(spotting.score[apex_i]), 5),
    )
    duration = source.duration_s or (ts[-1] - ts[0] + 1.0 / source.fps)
    fps = (n - 1) / (ts[-1] - ts[0]) if n > 1 and ts[-1] > ts[0] else source.fps
    head = AnalysisResult(
        video=VideoInfo(
            filename=source.filename,
            sha256=source.sha256,
            fps=round(fps, 4),
            frame_count=n,
            width=track.size[0],
            height=track.size[1],
            duration_s=round(duration, 6),
            codec=source.codec,
            rotation_deg=source.rotation_deg,
        ),
        frames=[],
        apex=apex,
        intervals=intervals,
        emotion=top_emotion,
        emotion_reason=reason,
        au_method=aus.method,
        neutral=aus.neutral,
        models=models,
        timings_ms={k: round(v, 2) for k, v in timings_ms.items()},
        warnings=warnings,
    )
    return CompactResult(head, frame_table(track, spotting, aus, include_blendshapes))
