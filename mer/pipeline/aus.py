"""Stage 3, Action Units: per-frame scores of :data:`mer.schemas.AU_NAMES` in [0, 1].

Three sources, fused by :func:`mer.aus.fusion.fuse_scores`: the blendshape evidence relative
to the person's neutral (:mod:`mer.aus.blendshapes`; real faces, macro and clear
movements), the learned subtle-motion AU detector (:mod:`mer.models.au_detector`, on each
aligned frame, its local neutral reference and the flow between them; micro amplitudes),
and the training-free FACS rules (:mod:`mer.aus.rules`; the fallback).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mer.aus import rules as au_rules
from mer.aus.blendshapes import au_evidence
from mer.aus.fusion import fuse_scores
from mer.aus.geometry import ARCH_AUS, arch_evidence
from mer.errors import NeutralReferenceError
from mer.face.blendshapes import BLENDSHAPE_NAMES
from mer.inference import InferenceBackend
from mer.model_inputs import au_input_u8
from mer.pipeline.config import AnalysisConfig
from mer.pipeline.crops import CropStore
from mer.pipeline.motion import MotionResult
from mer.pipeline.track import FaceTrack
from mer.schemas import AU_NAMES, ModelInfo, NeutralInfo

BLENDSHAPE_AU_METHOD = "blendshape-au"  #: the blendshape -> AU table's name in ``au_method``
#: 2: browDown's neutral at its mode; no population cap in talking clips over 5 s;
#: 3: the AU04 ramp 0.08-0.28 (was 0.10-0.30); 4: browDown's neutral over frames with the
#: brows not raised, capped only where held above the cap; the client's neutral reference;
#: 5: with too few neutral frames, the first pass again without an expression at full strength
BLENDSHAPE_AU_VERSION = "5"
GEOMETRY_AU_METHOD = "lip-arch-au"  #: the lower-lip arch's name in ``au_method``
#: face frames per call of the learned AU detector: the inputs of one call (16 KB a frame
#: with flow) are all the stage holds, whatever the video's length
AU_CHUNK = 512


@dataclass
class AUResult:
    """AU scores of ``T`` frames.

    Attributes:
        scores: ``(T, len(AU_NAMES))`` float32 in [0, 1], the fused scores.
        activity: ``(T,)`` float32 largest learned-detector probability per frame, or None
            when no learned detector ran (the spotting stage's apex term).
        method: the ``au_method`` reported in the result.
        models: the models that produced the scores.
        evidence: ``(T, len(AU_NAMES))`` float32 real-face evidence: the blendshapes'
            relative to the person's neutral, with the landmark geometry's (AU15 / AU17 from
            the lower-lip arch, :mod:`mer.aus.geometry`) where it is defined, their maximum;
            NaN for the AUs neither sees and frames without face; None without blendshapes.
            What the expression segments are cut from (:mod:`mer.pipeline.spotting`).
        neutral: the neutral the evidence is read against (None without blendshapes).
    """

    scores: np.ndarray
    activity: np.ndarray | None
    method: str
    models: list[ModelInfo] = field(default_factory=list)
    evidence: np.ndarray | None = None
    neutral: NeutralInfo | None = None


def _learned(
    track: FaceTrack, motion: MotionResult, crops: CropStore, backend: InferenceBackend
) -> tuple[np.ndarray, str, ModelInfo | None]:
    """``(T, A)`` learned-detector probabilities, its name, and its model info."""
    au_model = getattr(backend, "au", None)
    learned = np.zeros((track.n_frames, len(AU_NAMES)), np.float32)
    face_idx = np.flatnonzero(np.asarray(track.valid))
    pair = au_model.meta.pair if au_model is not None else {}
    labels = list(au_model.meta.labels) if au_model is not None else list(AU_NAMES)
    cols = [(j, labels.index(name)) for j, name in enumerate(AU_NAMES) if name in labels]
    for lo in range(0, len(face_idx), AU_CHUNK):  # bounded memory in video length
        idx = face_idx[lo : lo + AU_CHUNK]
        pairs = np.stack(
            [au_input_u8(crops[i], crops[motion.refs[i]], pair) for i in idx]
        )  # (B, K, 1, M, M) uint8
        probs = backend.predict_au(pairs)
        for j, k in cols:
            learned[idx, j] = probs[:, k]
    name = au_model.info.name + "-" + au_model.info.version if au_model else backend.name
    return learned, name, au_model.info if au_model is not None else None


def geometric_evidence(track: FaceTrack, reference: np.ndarray | None = None) -> np.ndarray | None:
    """``(T, len(AU_NAMES))`` float32 AU15 / AU17 evidence from the lower-lip arch against
    the neutral population, or the person's neutral frames ``reference`` ``(T,)`` bool
    (:mod:`mer.aus.geometry`), NaN for the other AUs and frames without face; None when
    the track has no arch (tracks built by hand)."""
    arch = np.asarray(track.lip_arch, np.float64)
    if len(arch) != track.n_frames or len(track.pose) != track.n_frames or not len(arch):
        return None
    ev = arch_evidence(arch, np.asarray(track.pose, np.float64), reference)
    out = np.full((track.n_frames, len(AU_NAMES)), np.nan, np.float32)
    face = ~np.isnan(arch)
    for au in ARCH_AUS:
        out[face, AU_NAMES.index(au)] = ev[face]
    return out


def score_aus(
    track: FaceTrack,
    motion: MotionResult,
    crops: CropStore,
    backend: InferenceBackend | None,
    cfg: AnalysisConfig,
) -> AUResult:
    """Score every AU of every frame.

    Args:
        track: the tracking stage's output (validity, lip gap, blendshapes).
        motion: the motion stage's output (displacements, strength, references).
        crops: aligned ``(S, S)`` uint8 crops of the face frames.
        backend: runs the learned AU detector (``predict_au``); None = no learned detector.
        cfg: ``fusion``, ``baseline``, ``neutral`` and the speech detector's
            (``intervals.events``) parameters.

    Returns:
        :class:`AUResult`.

    Raises:
        NeutralReferenceError: ``cfg.neutral`` holds no frame with a face.
    """
    rules = au_rules.au_scores(motion.at_best_lag(), np.asarray(track.lip_gap))
    models = [ModelInfo(name=au_rules.METHOD_NAME, version="1", task="au", method="rules")]
    parts = [au_rules.METHOD_NAME]
    learned = activity = None
    au_model = getattr(backend, "au", None) if backend is not None else None
    if backend is not None and (au_model is not None or not hasattr(backend, "au")):
        learned, name, info = _learned(track, motion, crops, backend)
        activity = learned.max(axis=1)
        parts.insert(0, name)
        if info is not None:
            models.append(info)
    evidence = neutral = ref = None
    bs = track.blendshape_array()
    if bs is not None:
        t = np.asarray(track.timestamps_s)
        neutral = NeutralInfo(source="estimated")
        if cfg.neutral is not None:
            ref = cfg.neutral.mask(t)
            used = ref & ~np.isnan(bs).any(axis=1)
            if not used.any():
                raise NeutralReferenceError(
                    f"the neutral stretch {cfg.neutral.describe()} holds {int(ref.sum())} "
                    f"of the video's {len(t)} frames, none with a face; give a stretch where "
                    "the face is visible and at rest"
                )
            neutral = _reference_info(used, t)
        evidence = au_evidence(
            bs, BLENDSHAPE_NAMES, t, AU_NAMES, cfg.baseline, cfg.intervals.events, ref
        )
        parts.insert(0, BLENDSHAPE_AU_METHOD + "-v" + BLENDSHAPE_AU_VERSION)
        models.append(
            ModelInfo(
                name=BLENDSHAPE_AU_METHOD, version=BLENDSHAPE_AU_VERSION, task="au", method="rules"
            )
        )
    geometry = geometric_evidence(track, ref) if evidence is not None else None
    if geometry is not None:
        models.append(ModelInfo(name=GEOMETRY_AU_METHOD, version="1", task="au", method="rules"))
        parts.append(GEOMETRY_AU_METHOD)
    scores = fuse_scores(
        rules, learned, evidence, motion.strength, AU_NAMES, cfg.fusion, geometry=geometry
    )
    method = "+".join(parts) + (" (fused)" if len(parts) > 1 else "")
    if evidence is not None and geometry is not None:
        # the segments see every real-face source: a sad mouth the blendshapes miss too
        evidence = np.fmax(evidence, geometry).astype(np.float32)
    return AUResult(scores, activity, method, models, evidence, neutral)


def _reference_info(used: np.ndarray, t: np.ndarray) -> NeutralInfo:
    """What the result reports of a reference stretch: its face frames ``used`` ``(T,)``
    bool at ``t`` ``(T,)`` seconds."""
    idx = np.flatnonzero(used)
    return NeutralInfo(
        source="reference",
        start_s=round(float(t[idx[0]]), 6),
        end_s=round(float(t[idx[-1]]), 6),
        frames=len(idx),
    )
