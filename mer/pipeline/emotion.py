"""Stage 5, emotion: an MEGC class for every spotted interval.

SMA-STN (:mod:`mer.models.sma_stn`) on the DSSI dynamic images of the interval's
onset-to-offset span (:func:`mer.inference.dssi_u8_from_crops`). ``none`` is the model's
class for speech, blinks and head motion. Without a trained emotion model, no interval has
an emotion and the reason says why (never a random-weight prediction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mer.inference import InferenceBackend, dssi_u8_from_crops
from mer.pipeline.crops import CropStore
from mer.schemas import EmotionPrediction, ModelInfo
from mer.spotting import SpottedInterval

NON_EMOTIONAL = "none"  #: the emotion model's class for speech, blinks and head motion


@dataclass
class EmotionResult:
    """One prediction per interval (None where no model ran) and why there is none."""

    predictions: list[EmotionPrediction | None]
    reason: str | None = None
    models: list[ModelInfo] = field(default_factory=list)


def classify_intervals(
    intervals: list[SpottedInterval], crops: CropStore, backend: InferenceBackend | None
) -> EmotionResult:
    """Name the emotion of each interval.

    Args:
        intervals: spotted intervals (frame indices into ``crops``).
        crops: aligned ``(S, S)`` uint8 crops of the face frames.
        backend: runs SMA-STN (``predict_emotion``); None = no emotion.

    Returns:
        :class:`EmotionResult` with ``len(intervals)`` predictions.
    """
    none: list[EmotionPrediction | None] = [None] * len(intervals)
    emo_model = getattr(backend, "emotion", None) if backend is not None else None
    if backend is None or emo_model is None:
        return EmotionResult(
            none,
            "no trained emotion model is installed (model_store/sma_stn.pt); see the "
            "README's training command",
        )
    if not intervals:
        return EmotionResult(none, "no movement interval was spotted")
    dssi = np.stack(
        [dssi_u8_from_crops(crops, iv.onset, iv.offset, emo_model.meta.dssi) for iv in intervals]
    )
    probs = backend.predict_emotion(dssi)
    labels = list(emo_model.meta.labels)
    name = f"{emo_model.info.name}-{emo_model.info.version}"
    preds: list[EmotionPrediction | None] = []
    for p in probs:
        j = int(np.argmax(p))
        preds.append(
            EmotionPrediction(
                label=labels[j],
                score=round(float(p[j]), 5),
                probabilities={c: round(float(v), 5) for c, v in zip(labels, p, strict=True)},
                model=name,
            )
        )
    return EmotionResult(preds, None, [emo_model.info])
