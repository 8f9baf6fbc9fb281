"""Stage: result assembly (mer.pipeline.assemble)."""

from __future__ import annotations

import numpy as np

from mer.pipeline.assemble import intervals_out, video_emotion
from mer.pipeline.aus import AUResult
from mer.pipeline.emotion import EmotionResult
from mer.pipeline.spotting import SpottingResult
from mer.pipeline.track import FaceTrack
from mer.schemas import AU_NAMES, EmotionPrediction, Interval, ModelInfo
from mer.spotting import SpottedInterval


def _emo(label: str, p: float) -> EmotionPrediction:
    return EmotionPrediction(label=label, score=p, probabilities={label: p}, model="m")


def _interval(score: float, emotion: EmotionPrediction | None) -> Interval:
    return Interval(
        onset=0, apex=1, offset=2, onset_s=0, apex_s=0.1, offset_s=0.2, duration_s=0.2,
        kind="micro", score=score, top_aus=[], emotion=emotion,
    )  # fmt: skip


def test_video_emotion_is_the_strongest_emotional_interval() -> None:
    strong = _interval(0.9, _emo("positive", 0.8))
    weak = _interval(0.3, _emo("negative", 0.99))
    assert video_emotion([weak, strong], None, 0.7) == (strong.emotion, None)
    e, why = video_emotion([_interval(0.9, _emo("none", 0.9)), weak], None, 0.7)
    assert e is None and "not emotional" in (why or "")
    e, why = video_emotion([_interval(0.9, _emo("positive", 0.6))], None, 0.7)
    assert e is None and "below MER_EMOTION_MIN_SCORE" in (why or "")
    assert video_emotion([], "no model", 0.7) == (None, "no model")
    assert video_emotion([_interval(0.5, None)], "no model", 0.7) == (None, "no model")


def test_intervals_in_seconds_with_kind_and_top_aus() -> None:
    fps = 30.0
    track = FaceTrack(timestamps_s=[i / fps for i in range(40)], valid=[True] * 40)
    scores = np.zeros((40, len(AU_NAMES)), np.float32)
    scores[5, AU_NAMES.index("AU12")] = 0.9
    scores[5, AU_NAMES.index("AU06")] = 0.6
    scores[5, AU_NAMES.index("AU04")] = 0.4
    aus = AUResult(scores, None, "test")
    spotted = [SpottedInterval(0, 5, 15, 0.8), SpottedInterval(16, 20, 39, 0.4)]
    model = ModelInfo(name="s", version="1", task="apex", method="rules")
    sp = SpottingResult(spotted, np.zeros(40), np.zeros(40), model)
    out = intervals_out(track, sp, aus, EmotionResult([None, None]))
    assert [iv.kind for iv in out] == ["micro", "macro"]  # 0.5 s vs 0.77 s
    assert out[0].top_aus == ["AU12", "AU06"] and out[1].top_aus == []
    assert abs(out[1].onset_s - 16 / fps) < 1e-6 and abs(out[0].duration_s - 0.5) < 1e-6
