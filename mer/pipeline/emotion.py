"""Stage 5, emotion: an MEGC class for every spotted interval.

Expression intervals: the EMFACS AU-evidence classifier over the interval's AU profile
(:mod:`mer.emotion.evidence`) fused with SMA-STN (:mod:`mer.models.sma_stn`, on the DSSI
dynamic images of the onset-to-offset span) by :func:`mer.emotion.fusion.decide`; each
prediction says which method decided. Intervals that are not expressions (speech, blink,
head, gaze) get ``none`` (``method = kind``). Without a trained SMA-STN the AU evidence
decides alone (never a random-weight prediction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mer.emotion.evidence import classify_profile, interval_profile
from mer.emotion.fusion import EmotionFusionConfig, decide, not_an_expression
from mer.inference import InferenceBackend
from mer.model_inputs import dssi_u8_from_crops
from mer.pipeline.crops import CropStore
from mer.schemas import AU_NAMES, EmotionPrediction, ModelInfo
from mer.spotting import SpottedInterval

#: intervals per SMA-STN call: a long video has hundreds; one call's inputs (49 kB each)
#: and activations (about 1 MB each in process) are all the stage holds
EMOTION_CHUNK = 16


@dataclass
class EmotionResult:
    """One prediction per interval (None where nothing could decide) and why there is none."""

    predictions: list[EmotionPrediction | None]
    reason: str | None = None
    models: list[ModelInfo] = field(default_factory=list)


def _sma_stn(
    intervals: list[SpottedInterval], crops: CropStore, backend: InferenceBackend | None
) -> tuple[list[dict[str, float] | None], str | None, ModelInfo | None]:
    """SMA-STN's probabilities for each interval (None where it did not run)."""
    emo_model = getattr(backend, "emotion", None) if backend is not None else None
    if backend is None or emo_model is None or not intervals:
        return [None] * len(intervals), None, None
    parts = []
    for lo in range(0, len(intervals), EMOTION_CHUNK):  # bounded inputs and activations
        dssi = np.stack(
            [
                dssi_u8_from_crops(crops, iv.onset, iv.offset, emo_model.meta.dssi)
                for iv in intervals[lo : lo + EMOTION_CHUNK]
            ]
        )  # (B, S + 1, C, M, M) uint8
        parts.append(backend.predict_emotion(dssi))
    probs = np.concatenate(parts)
    labels = list(emo_model.meta.labels)
    out: list[dict[str, float] | None] = [
        {c: round(float(v), 5) for c, v in zip(labels, p, strict=True)} for p in probs
    ]
    return out, f"{emo_model.info.name}-{emo_model.info.version}", emo_model.info


def classify_intervals(
    intervals: list[SpottedInterval],
    crops: CropStore,
    backend: InferenceBackend | None,
    au_scores: np.ndarray | None = None,
    cfg: EmotionFusionConfig | None = None,
) -> EmotionResult:
    """Name the emotion of each interval.

    Args:
        intervals: spotted intervals (frame indices into ``crops`` and ``au_scores``).
        crops: aligned ``(S, S)`` uint8 crops of the face frames.
        backend: runs SMA-STN (``predict_emotion``); None = AU evidence only.
        au_scores: ``(T, len(AU_NAMES))`` fused AU scores; None = SMA-STN only (as before
            the AU evidence existed).
        cfg: fusion thresholds; default :class:`EmotionFusionConfig()`.

    Returns:
        :class:`EmotionResult` with ``len(intervals)`` predictions.
    """
    cfg = cfg or EmotionFusionConfig()
    if not intervals:
        return EmotionResult([], "no movement interval was spotted")
    expr = [i for i, iv in enumerate(intervals) if iv.kind == "expression"]
    probs, model_name, info = _sma_stn([intervals[i] for i in expr], crops, backend)
    preds: list[EmotionPrediction | None] = [
        not_an_expression(iv.kind) if iv.kind != "expression" else None for iv in intervals
    ]
    models = [info] if info is not None else []
    if au_scores is None and info is None:
        return EmotionResult(
            preds,
            "no trained emotion model is installed (model_store/sma_stn.pt); see the "
            "README's training command",
        )
    for k, i in enumerate(expr):
        iv = intervals[i]
        if au_scores is None:  # SMA-STN alone
            p = probs[k] or {}
            top = max(p, key=p.get)  # type: ignore[arg-type]
            preds[i] = EmotionPrediction(
                label=top, score=p[top], probabilities=p, model=model_name or "", method="sma-stn"
            )
            continue
        profile = interval_profile(au_scores, iv.onset, iv.apex, iv.offset)
        decision = classify_profile(profile, AU_NAMES, cfg.min_evidence)
        preds[i] = decide(decision, probs[k], model_name, cfg)
    reason = None if expr else "no expression was spotted (only speech, blinks, head or gaze)"
    return EmotionResult(preds, reason, models)
