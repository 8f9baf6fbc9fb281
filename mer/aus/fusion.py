"""Per-frame AU scores fused from three sources.

1. **Blendshapes** (:mod:`mer.aus.blendshapes`): MediaPipe's real-face blendshape model,
   relative to the person's neutral; it sees macro and clear movements of the AUs in
   :data:`~mer.aus.blendshapes.AU_BLENDSHAPES` (and AU06 from strong smiles) on real faces.
2. **The learned subtle-motion AU detector** (:mod:`mer.models.au_detector`): trained on
   synthetic micro-expressions; it sees micro amplitudes, which move the blendshapes by
   less than their noise.
3. **The FACS rules** (:mod:`mer.aus.rules`): region motion and landmark geometry;
   training-free, for large movements and as the fallback of every other source.

Sources 2 and 3 are first blended by movement size (the detector below ``au_blend_low`` of
the IOD, the rules above ``au_blend_high``), giving the *motion* score. Then, per AU:

- an AU the blendshapes see: ``max(blendshape evidence, motion_weight * motion score)``
  where the movement is small (micro range, strength below ``au_blend_high``), and the
  blendshape evidence alone where it is large: a large movement the blendshapes do not call
  an AU is not that AU;
- an AU they cannot see (AU07, AU09, AU15, ...): ``motion_weight`` x the learned detector
  at every amplitude, without the rules, except the rules in :data:`GEOMETRIC_RULES`: on
  the real dev set the rules' region motion called AU15 in every surprise and open smile
  (the jaw drop pulls the lip corners down) and AU09 / AU07 in smiles, while a lip gap is a
  direct measurement of AU25;
- frames or videos without blendshapes: the motion score (the rules at worst), as before;
- the AUs of the geometric evidence (AU15 / AU17 from the lower-lip arch against the
  neutral population, :mod:`mer.aus.geometry`): the maximum of the above and that evidence.

The geometric rules (:data:`GEOMETRIC_RULES`) measure a state, not a movement: with
blendshapes they count at every amplitude, ``max(motion score, rule)``, not only where the
movement is large enough for the rules to take over from the learned detector (an open
smile held still, CREMA-D HAP's apex: lip gap 0.10 IOD, lips apart with teeth shown, scored
AU25 0.06 from the detector alone).

``motion_weight`` is calibrated on the real dev set (``mer evaluate-real``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: AUs whose FACS rule measures landmark geometry directly (the inner-lip gap for AU25)
#: and keeps its weight when the blendshapes are on
GEOMETRIC_RULES: tuple[str, ...] = ("AU25",)


@dataclass(frozen=True)
class FusionConfig:
    """Fusion parameters (fractions of the inter-ocular distance, IOD).

    Attributes:
        au_blend_low: movement strength up to which the learned detector alone makes the
            motion score.
        au_blend_high: strength from which the FACS rules alone make it; also where the
            blendshapes take over the AUs they see.
        motion_weight: weight of the motion score beside the blendshape evidence at small
            movements, for the AUs the blendshapes see.
    """

    au_blend_low: float = 0.03
    au_blend_high: float = 0.06
    motion_weight: float = 1.0


def motion_scores(
    rules: np.ndarray, learned: np.ndarray | None, strength: np.ndarray, cfg: FusionConfig
) -> np.ndarray:
    """Learned detector and FACS rules blended by movement size.

    Args:
        rules: ``(T, A)`` float FACS-rule scores in [0, 1].
        learned: ``(T, A)`` float learned-detector probabilities, or None (rules only).
        strength: ``(T,)`` float movement strength (fraction of the IOD).
        cfg: the blend window.

    Returns:
        ``(T, A)`` float32 in [0, 1].
    """
    if learned is None:
        return np.asarray(rules, np.float32)
    w = np.clip((strength - cfg.au_blend_low) / (cfg.au_blend_high - cfg.au_blend_low), 0.0, 1.0)[
        :, None
    ]
    return ((1.0 - w) * learned + w * rules).astype(np.float32)


def fuse_scores(
    rules: np.ndarray,
    learned: np.ndarray | None,
    evidence: np.ndarray | None,
    strength: np.ndarray,
    au_names: tuple[str, ...] | list[str],
    cfg: FusionConfig,
    geometry: np.ndarray | None = None,
) -> np.ndarray:
    """Fuse the three sources and the geometric evidence (see the module docstring).

    Args:
        rules: ``(T, A)`` float FACS-rule scores in [0, 1].
        learned: ``(T, A)`` float learned-detector probabilities, or None.
        evidence: ``(T, A)`` float blendshape evidence, NaN for AUs (columns) or frames it
            does not cover; None when no blendshapes were computed.
        strength: ``(T,)`` float movement strength (fraction of the IOD).
        au_names: the AU of each column.
        cfg: fusion parameters.
        geometry: ``(T, A)`` float geometric evidence in [0, 1] (:mod:`mer.aus.geometry`),
            NaN for the AUs it does not score, or None.

    Returns:
        ``(T, A)`` float32 in [0, 1].

    Raises:
        ValueError: shapes differ.
    """
    motion = motion_scores(rules, learned, strength, cfg)
    if evidence is None:
        return _with_geometry(motion, geometry)
    if evidence.shape != motion.shape:
        raise ValueError(f"evidence {evidence.shape} and motion {motion.shape} differ")
    w = cfg.motion_weight
    small = (strength < cfg.au_blend_high)[:, None]
    seen = np.where(small, np.maximum(evidence, w * motion), evidence)
    geometric = np.array([a in GEOMETRIC_RULES for a in au_names])[None, :]
    learned_only = w * learned if learned is not None else np.zeros_like(motion)
    blind = np.where(geometric, np.maximum(motion, rules), learned_only)
    covered = ~np.isnan(evidence).all(axis=0, keepdims=True)  # the AUs the blendshapes see
    face = ~np.isnan(evidence).all(axis=1, keepdims=True)  # frames that have blendshapes
    out = np.where(covered, seen, blind)
    return _with_geometry(np.where(face, out, motion).astype(np.float32), geometry)


def _with_geometry(scores: np.ndarray, geometry: np.ndarray | None) -> np.ndarray:
    """``max(scores, geometry)`` where the geometric evidence is defined (``(T, A)`` float32)."""
    if geometry is None:
        return scores
    if geometry.shape != scores.shape:
        raise ValueError(f"geometry {geometry.shape} and scores {scores.shape} differ")
    return np.fmax(scores, geometry).astype(np.float32)
