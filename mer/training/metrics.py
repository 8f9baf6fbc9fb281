"""Scores: confusion matrix, UF1 / UAR, per-AU F1, MEGC 3-class scores of a 4-class model.

UF1 and UAR are computed on predictions pooled over all folds (not averaged per fold).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mer.schemas import AU_NAMES, NO_EMOTION


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)`` int64 confusion matrix, rows = truth."""
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def uf1_uar(cm: np.ndarray) -> tuple[float, float]:
    """Unweighted (macro) F1 and average recall over classes present in the truth."""
    f1s, recalls = [], []
    for c in range(len(cm)):
        tp = cm[c, c]
        fn = cm[c].sum() - tp
        fp = cm[:, c].sum() - tp
        if cm[c].sum() == 0:
            continue
        recalls.append(tp / (tp + fn))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1s)), float(np.mean(recalls))


def per_au_f1(targets: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """F1 of each AU with at least one positive, at ``threshold``."""
    out = {}
    pred = probs >= threshold
    for j, name in enumerate(AU_NAMES):
        t = targets[:, j] > 0.5
        if t.sum() == 0:
            continue
        tp = (pred[:, j] & t).sum()
        fp = (pred[:, j] & ~t).sum()
        fn = (~pred[:, j] & t).sum()
        out[name] = float(2 * tp / (2 * tp + fp + fn))
    return out


def emotional_metrics(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict:
    """MEGC 3-class scores of a model that also has the ``"none"`` class.

    Only the clips whose truth is an emotion count, and the prediction is the most probable
    *emotion* (``"none"`` masked out), which is what a 3-class model would answer: the MEGC
    2019 protocol, comparable with the 3-class targets.

    Args:
        y_true: ``(N,)`` int class indices into ``classes``.
        probs: ``(N, len(classes))`` float probabilities.
        classes: class names, including ``"none"``.

    Returns:
        ``{"uf1", "uar", "confusion", "classes", "n_test_clips"}`` over the emotion classes.
    """
    keep = [i for i, c in enumerate(classes) if c != NO_EMOTION]
    mask = np.isin(y_true, keep)
    remap = {c: j for j, c in enumerate(keep)}
    yt = np.array([remap[int(v)] for v in y_true[mask]], np.int64)
    yp = probs[mask][:, keep].argmax(1)
    cm = confusion(yt, yp, len(keep))
    uf1, uar = uf1_uar(cm)
    return {"uf1": uf1, "uar": uar, "confusion": cm.tolist(),
            "classes": [classes[i] for i in keep], "n_test_clips": int(mask.sum())}  # fmt: skip
