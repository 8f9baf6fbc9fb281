"""One emotion per expression interval: the AU-evidence classifier fused with SMA-STN.

SMA-STN (:mod:`mer.models.sma_stn`) is trained on synthetic micro-expressions; on the real
dev set it named 1 of 11 labelled events right, while the EMFACS AU evidence
(:mod:`mer.emotion.evidence`) over the real-face AU scores names most of them. So:

1. the AU evidence names a class (its evidence reaches ``min_evidence``): that class;
   ``method = au-evidence+sma-stn`` when SMA-STN's top class agrees, else ``au-evidence``;
2. no class has AU evidence: SMA-STN's top class when it is an emotion and its probability
   reaches ``sma_stn_min`` (``method = sma-stn``: the subtle range it was trained on);
3. otherwise ``none`` (``method = au-evidence``): a movement with no emotional AU pattern.

The choice (and both thresholds) were made on the real dev set (``mer evaluate-real``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mer.emotion.evidence import CLASSES, EvidenceDecision
from mer.schemas import NO_EMOTION, EmotionPrediction

#: the AU-evidence classifier's name in results; v2: the nose wrinkle of a smile is not negative
EVIDENCE_MODEL = "emfacs-au-evidence-v2"


@dataclass(frozen=True)
class EmotionFusionConfig:
    """Fusion thresholds.

    Attributes:
        min_evidence: AU evidence (0-1) a class needs to be named by it.
        sma_stn_min: SMA-STN probability needed to decide alone.
    """

    min_evidence: float = 0.5
    sma_stn_min: float = 0.7


def decide(
    decision: EvidenceDecision,
    sma_stn: Mapping[str, float] | None,
    sma_stn_model: str | None,
    cfg: EmotionFusionConfig,
) -> EmotionPrediction:
    """The emotion of one expression interval (see the module docstring).

    Args:
        decision: the AU-evidence classifier's answer for the interval.
        sma_stn: SMA-STN's class probabilities for the interval, or None when it did not run.
        sma_stn_model: SMA-STN's name and version (``sma-stn-1.2.0``), or None.
        cfg: thresholds.

    Returns:
        :class:`mer.schemas.EmotionPrediction` with ``method`` and both sources' numbers.
    """
    probs = dict(sma_stn or {})
    top, p_top = max(probs.items(), key=lambda kv: kv[1]) if probs else (None, 0.0)
    evidence = dict(decision.evidence)
    label = decision.label if decision.score >= cfg.min_evidence else None
    if label is not None:
        agree = top == label
        return EmotionPrediction(
            label=label,
            score=round(max(decision.score, p_top if agree else 0.0), 5),
            probabilities=probs,
            model=EVIDENCE_MODEL + (f"+{sma_stn_model}" if agree and sma_stn_model else ""),
            method="au-evidence+sma-stn" if agree else "au-evidence",
            evidence=evidence,
        )
    if top in CLASSES and p_top >= cfg.sma_stn_min:
        return EmotionPrediction(
            label=top,
            score=round(p_top, 5),
            probabilities=probs,
            model=sma_stn_model or "sma-stn",
            method="sma-stn",
            evidence=evidence,
        )
    return EmotionPrediction(
        label=NO_EMOTION,
        score=round(1.0 - max(evidence.values(), default=0.0), 5),
        probabilities=probs,
        model=EVIDENCE_MODEL,
        method="au-evidence",
        evidence=evidence,
    )


def not_an_expression(kind: str) -> EmotionPrediction:
    """The emotion of a movement that is not an expression (speech, blink, head, gaze)."""
    return EmotionPrediction(
        label=NO_EMOTION, score=1.0, probabilities={}, model=f"movement-kind:{kind}", method="kind"
    )
