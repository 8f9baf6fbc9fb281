"""The MEGC class of an expression from its AU profile: EMFACS / objective classes.

The objective classes of SAMM and CAS(ME)^3 name an emotion from the AUs present (Davison
et al., "Objective classes for micro-facial expression recognition", J. Imaging 2018;
Friesen & Ekman's EMFACS): happiness AU6+AU12 (AU12 alone: a social smile); surprise
AU1+AU2 with AU5 and / or AU26; sadness AU1+AU4+AU15 (+AU17); disgust AU9 / AU10 (+AU15);
anger AU4+AU5+AU7+AU23; fear AU1+AU2+AU4+AU5 (+AU7, AU20, AU26); contempt one-sided
AU12 / AU14. MEGC's three classes: happiness -> positive; surprise -> surprise; sadness,
disgust, anger, fear, contempt -> negative.

Each class gets an evidence in [0, 1] from the AU scores of the interval's profile
(:func:`interval_profile`):

- positive = AU12;
- surprise = min(mean(AU01, AU02), max(AU05, AU26)) x (1 - AU04): raised brows that are
  also drawn together are fear (negative), not surprise;
- negative = max(AU04, AU15, AU09 x (1 - AU12), AU10 x (1 - AU12), AU07 x (1 - AU12),
  AU17 x (1 - AU12), AU14 x (1 - AU12)): the nose wrinkling, lid tightening, upper-lip
  raise, chin raise and dimpler of smiles do not count against them (a strong smile's
  cheek raise bunches the skin beside the nose: the learned detector reads AU09 at 0.9 in
  a fex-metrica smile once the clip is darkened, which named it negative).

The class with the largest evidence wins when that evidence reaches ``min_evidence``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CLASSES = ("negative", "positive", "surprise")


@dataclass(frozen=True)
class EvidenceDecision:
    """The AU-evidence classifier's answer for one interval.

    Attributes:
        label: ``positive`` / ``negative`` / ``surprise``, or None when no class reaches
            ``min_evidence``.
        evidence: class -> evidence in [0, 1].
    """

    label: str | None
    evidence: dict[str, float]

    @property
    def score(self) -> float:
        """The winning class's evidence (0 without a label)."""
        return self.evidence[self.label] if self.label else 0.0


def interval_profile(
    scores: np.ndarray, onset: int, apex: int, offset: int, quantile: float = 0.8
) -> np.ndarray:
    """The AU profile of one interval: each AU's ``quantile`` over the frames around the apex.

    Args:
        scores: ``(T, A)`` float per-frame AU scores in [0, 1].
        onset, apex, offset: frame indices (inclusive).
        quantile: taken over the central half of the interval around the apex (at least
            the apex and its neighbours), so a one-frame spike or the onset ramp do not decide.

    Returns:
        ``(A,)`` float64 in [0, 1].
    """
    half = max(1, (offset - onset + 1) // 4)
    lo, hi = max(onset, apex - half), min(offset, apex + half)
    window = np.nan_to_num(np.asarray(scores[lo : hi + 1], np.float64))
    return np.quantile(window, quantile, axis=0)


def class_evidence(scores: np.ndarray, au_names: Sequence[str]) -> np.ndarray:
    """Evidence of each class of :data:`CLASSES` for AU scores (see the module docstring).

    Args:
        scores: ``(..., A)`` float AU scores in [0, 1] (a profile or per-frame scores).
        au_names: the AU of each of the ``A`` entries; AUs not listed count as 0.

    Returns:
        ``(..., 3)`` float64 in [0, 1], columns in :data:`CLASSES` order.
    """
    x = np.nan_to_num(np.asarray(scores, np.float64))
    col = {n: i for i, n in enumerate(au_names)}
    zero = np.zeros(x.shape[:-1])

    def a(name: str) -> np.ndarray:
        return x[..., col[name]] if name in col else zero

    not_smile = 1.0 - a("AU12")
    positive = a("AU12")
    surprise = np.minimum(0.5 * (a("AU01") + a("AU02")), np.maximum(a("AU05"), a("AU26")))
    surprise = surprise * (1.0 - a("AU04"))
    negative = np.max(
        np.stack(
            [
                a("AU04"),
                a("AU09") * not_smile,
                a("AU15"),
                a("AU10") * not_smile,
                a("AU07") * not_smile,
                a("AU17") * not_smile,
                a("AU14") * not_smile,
            ]
        ),
        axis=0,
    )
    by_class = {"negative": negative, "positive": positive, "surprise": surprise}
    return np.stack([by_class[c] for c in CLASSES], axis=-1)


def classify_profile(
    profile: Sequence[float] | np.ndarray, au_names: Sequence[str], min_evidence: float = 0.5
) -> EvidenceDecision:
    """Name the MEGC class of an AU profile (see the module docstring).

    Args:
        profile: ``(A,)`` AU scores in [0, 1].
        au_names: the AU of each entry (e.g. :data:`mer.schemas.AU_NAMES`); AUs not listed
            count as 0.
        min_evidence: evidence a class needs to be named.

    Returns:
        :class:`EvidenceDecision`.
    """
    ev = class_evidence(np.asarray(profile, np.float64), au_names)
    evidence = {c: round(float(v), 5) for c, v in zip(CLASSES, ev, strict=True)}
    best = max(CLASSES, key=lambda c: evidence[c])
    return EvidenceDecision(best if evidence[best] >= min_evidence else None, evidence)
