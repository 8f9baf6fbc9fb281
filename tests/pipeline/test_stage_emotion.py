"""Stage: emotion (mer.pipeline.emotion)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mer.pipeline import emotion as emotion_module
from mer.pipeline.emotion import classify_intervals
from mer.schemas import ModelInfo
from mer.spotting import SpottedInterval
from tests.pipeline.streaming import Streamed

LABELS = ["negative", "positive", "surprise", "none"]


class FixedEmotionBackend:
    """Answers ``positive`` with p = 0.7 for every interval; records the DSSI batch."""

    name = "fixed"

    def __init__(self) -> None:
        info = ModelInfo(name="sma-stn", version="9", task="emotion", method="learned")
        meta = SimpleNamespace(labels=LABELS, dssi={})
        self.emotion = SimpleNamespace(info=info, meta=meta)
        self.batch: tuple[int, ...] = ()

    def predict_emotion(self, dssi_u8: np.ndarray) -> np.ndarray:
        self.batch = dssi_u8.shape
        return np.tile(np.array([0.1, 0.7, 0.1, 0.1], np.float32), (len(dssi_u8), 1))


def test_no_model_no_emotion_and_the_reason(smile_streamed: Streamed) -> None:
    iv = [SpottedInterval(10, 30, 60, 0.9)]
    r = classify_intervals(iv, smile_streamed.crops, None)
    assert r.predictions == [None] and "no trained emotion model" in (r.reason or "")
    r = classify_intervals([], smile_streamed.crops, FixedEmotionBackend())  # type: ignore[arg-type]
    assert r.predictions == [] and r.reason == "no movement interval was spotted"


def test_one_prediction_per_interval_from_its_dynamic_images(smile_streamed: Streamed) -> None:
    backend = FixedEmotionBackend()
    ivs = [SpottedInterval(10, 30, 60, 0.9), SpottedInterval(2, 4, 8, 0.3)]
    r = classify_intervals(ivs, smile_streamed.crops, backend)  # type: ignore[arg-type]
    assert backend.batch[0] == 2 and backend.batch[-1] == backend.batch[-2]  # square images
    assert [p.label for p in r.predictions] == ["positive", "positive"]  # type: ignore[union-attr]
    p = r.predictions[0]
    assert p is not None and p.model == "sma-stn-9" and abs(p.score - 0.7) < 1e-6
    assert set(p.probabilities) == set(LABELS)
    assert r.reason is None and [m.name for m in r.models] == ["sma-stn"]


class MeanEmotionBackend(FixedEmotionBackend):
    """Answers from each input's mean grey level (so that order matters); records the
    batch sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def predict_emotion(self, dssi_u8: np.ndarray) -> np.ndarray:
        self.batches.append(len(dssi_u8))
        m = dssi_u8.reshape(len(dssi_u8), -1).mean(axis=1) / 255.0
        p = np.stack([m, 1 - m, np.zeros_like(m), np.zeros_like(m)], axis=1)
        return p.astype(np.float32)


def test_many_intervals_go_to_sma_stn_in_bounded_chunks_in_order(
    smile_streamed: Streamed, monkeypatch: pytest.MonkeyPatch
) -> None:
    ivs = [SpottedInterval(lo, lo + 3, lo + 6 + lo % 5, 0.5) for lo in range(0, 60, 2)]
    monkeypatch.setattr(emotion_module, "EMOTION_CHUNK", 1000)
    whole = MeanEmotionBackend()
    want = classify_intervals(ivs, smile_streamed.crops, whole)  # type: ignore[arg-type]
    assert whole.batches == [30]
    monkeypatch.setattr(emotion_module, "EMOTION_CHUNK", 8)
    chunked = MeanEmotionBackend()
    got = classify_intervals(ivs, smile_streamed.crops, chunked)  # type: ignore[arg-type]
    assert chunked.batches == [8, 8, 8, 6]
    assert got.predictions == want.predictions
    assert len({p.probabilities["negative"] for p in got.predictions if p}) > 10
