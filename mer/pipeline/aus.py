"""Stage 3, Action Units: per-frame scores of :data:`mer.schemas.AU_NAMES` in [0, 1].

Sources: the training-free FACS rules over the region displacements
(:mod:`mer.aus.rules`), and the learned subtle-motion AU detector (:mod:`mer.models.au_detector`)
on each aligned frame, its local neutral reference and the flow between them, when a
backend runs it. The detector knows the subtle range it was trained on; large movements
(open-mouth smiles, speech) are scored by the rules, blended linearly between
``au_blend_low`` and ``au_blend_high`` of movement strength (fractions of the IOD).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mer.aus import rules as au_rules
from mer.inference import InferenceBackend, au_input_u8
from mer.pipeline.config import AnalysisConfig
from mer.pipeline.crops import CropStore
from mer.pipeline.motion import MotionResult
from mer.pipeline.track import FaceTrack
from mer.schemas import AU_NAMES, ModelInfo


@dataclass
class AUResult:
    """AU scores of ``T`` frames.

    Attributes:
        scores: ``(T, len(AU_NAMES))`` float32 in [0, 1].
        activity: ``(T,)`` float32 largest learned-detector probability per frame, or None
            when no learned detector ran (the spotting stage's apex term).
        method: the ``au_method`` reported in the result.
        models: the models that produced the scores.
    """

    scores: np.ndarray
    activity: np.ndarray | None
    method: str
    models: list[ModelInfo] = field(default_factory=list)


def score_aus(
    track: FaceTrack,
    motion: MotionResult,
    crops: CropStore,
    backend: InferenceBackend | None,
    cfg: AnalysisConfig,
) -> AUResult:
    """Score every AU of every frame.

    Args:
        track: the tracking stage's output (validity, lip gap).
        motion: the motion stage's output (displacements, strength, references).
        crops: aligned ``(S, S)`` uint8 crops of the face frames.
        backend: runs the learned AU detector (``predict_au``); None = rules only.
        cfg: ``au_blend_low`` / ``au_blend_high`` (fractions of the IOD).

    Returns:
        :class:`AUResult`.
    """
    rules = au_rules.au_scores(motion.at_best_lag(), np.asarray(track.lip_gap))
    models = [ModelInfo(name=au_rules.METHOD_NAME, version="1", task="au", method="rules")]
    au_model = getattr(backend, "au", None) if backend is not None else None
    if backend is None or (au_model is None and hasattr(backend, "au")):
        return AUResult(rules, None, au_rules.METHOD_NAME, models)
    n = track.n_frames
    learned = np.zeros((n, len(AU_NAMES)), np.float32)
    face_idx = np.flatnonzero(np.asarray(track.valid))
    pair = au_model.meta.pair if au_model is not None else {}
    pairs = np.stack(
        [au_input_u8(crops[i], crops[motion.refs[i]], pair) for i in face_idx]
    )  # (F, K, 1, M, M) uint8
    probs = backend.predict_au(pairs)
    labels = list(au_model.meta.labels) if au_model is not None else list(AU_NAMES)
    for j, name in enumerate(AU_NAMES):
        if name in labels:
            learned[face_idx, j] = probs[:, labels.index(name)]
    w = np.clip(
        (motion.strength - cfg.au_blend_low) / (cfg.au_blend_high - cfg.au_blend_low), 0.0, 1.0
    )[:, None]
    scores = ((1.0 - w) * learned + w * rules).astype(np.float32)
    name = au_model.info.name + "-" + au_model.info.version if au_model else backend.name
    if au_model is not None:
        models.append(au_model.info)
    method = f"{name}+{au_rules.METHOD_NAME} (blended by movement size)"
    return AUResult(scores, learned.max(axis=1), method, models)
