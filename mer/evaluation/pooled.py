"""Metrics pooled over clips: sums of the per-clip counts of :mod:`mer.evaluation.scoring`
divided once (not per-clip averages).

AU F1, confusion and UAR use the project's metric functions of :mod:`mer.training`
(``per_au_f1``, ``confusion``, ``uf1_uar``), the ones ``mer evaluate`` reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from mer.evaluation.labels import SCORED_EMOTIONS
from mer.evaluation.scoring import (
    APEX_TOLERANCE_FRAMES,
    AU12_APEX_MIN,
    AU12_RISE_MIN,
    AU_CONFIDENCES,
    AU_THRESHOLD,
    IOU_THRESHOLD,
    ClipScore,
)
from mer.schemas import AU_NAMES, NO_EMOTION
from mer.training.metrics import confusion, per_au_f1, uf1_uar


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(p, 4), "recall": round(r, 4),
            "f1": round(f1, 4)}  # fmt: skip


def pool(scores: Sequence[ClipScore]) -> dict:
    """Metrics pooled over clips (counts summed before dividing).

    Returns:
        ``{"spotting", "apex", "au", "au12_smiles", "emotion", "non_expression"}``: see
        the module docstring for the rules; AU F1 via :func:`mer.training.per_au_f1` (AUs
        with at least one positive label only), emotion confusion rows = truth,
        columns = prediction (the MEGC 3 classes, ``none``, then any other label).
    """
    tp = sum(s.tp for s in scores)
    n_events = sum(s.n_expression_events for s in scores)
    n_pred = sum(s.n_expression_intervals for s in scores)
    spotting = {**_prf(tp, n_pred - tp, n_events - tp), "n_events": n_events,
                "n_intervals": n_pred, "iou_threshold": IOU_THRESHOLD}  # fmt: skip

    # events whose apex is an arbitrary frame of a flat hold (apex_scoreable false) are out
    matched = [(s, m) for s in scores for m in s.matches if m.apex_hit is not None]
    hits = sum(bool(m.apex_hit) for _, m in matched)
    apex = {"n_matched": len(matched), "hits": hits,
            "share": round(hits / len(matched), 4) if matched else None,
            "tolerance_frames": APEX_TOLERANCE_FRAMES,
            "micro": micro_apex_error([r for s in scores for r in s.apex_rows])}  # fmt: skip

    au_rows = [r for s in scores for r in s.au_rows]
    au: dict = {"n_apexes": len(au_rows), "threshold": AU_THRESHOLD,
                "confidences": list(AU_CONFIDENCES)}  # fmt: skip
    if au_rows:
        targets = np.array([[a in r["labelled"] for a in AU_NAMES] for r in au_rows], np.float32)
        probs = np.array([[r["scores"][a] for a in AU_NAMES] for r in au_rows], np.float32)
        f1 = per_au_f1(targets, probs, AU_THRESHOLD)
        au |= {
            "f1": {k: round(v, 4) for k, v in f1.items()},
            "macro_f1": round(float(np.mean(list(f1.values()))), 4) if f1 else None,
            "scored_aus": list(f1),
            "support": {a: int(targets[:, j].sum()) for j, a in enumerate(AU_NAMES)},
            "predicted_positive": {a: int((probs[:, j] >= AU_THRESHOLD).sum())
                                   for j, a in enumerate(AU_NAMES)},
        }  # fmt: skip

    smiles = [r for s in scores for r in s.smile_rows]
    au12 = {"rows": smiles, "n": len(smiles), "n_rise": sum(r["au12_rises"] for r in smiles),
            "rises_at_every_smile": bool(smiles) and all(r["au12_rises"] for r in smiles),
            "apex_min": AU12_APEX_MIN, "rise_min": AU12_RISE_MIN}  # fmt: skip

    rows = [r for s in scores for r in s.emotion_rows]
    return {
        "spotting": spotting,
        "apex": apex,
        "au": au,
        "au12_smiles": au12,
        "emotion": _emotion_metrics(rows),
        "non_expression": _non_expression(scores),
    }


def micro_apex_error(rows: Sequence[dict]) -> dict:
    """Apex error over the labelled micro expression events matched by an interval.

    Args:
        rows: :func:`mer.evaluation.scoring.apex_error_rows` rows (any clips); rows with
            ``micro`` false are ignored.

    Returns:
        ``{"n_events", "n_matched", "mae_rel", "median_rel", "mae_frames", "rows"}``:
        labelled micro events, those matched (IoU >= 0.5), the mean and median of
        ``|predicted - labelled apex| / (offset - onset + 1)`` and the mean error in frames
        over the matched ones (None when none matched), and the matched rows.
    """
    micro = [r for r in rows if r["micro"]]
    hit = [r for r in micro if r["interval"] is not None]
    rel = [r["error_rel"] for r in hit]
    return {
        "n_events": len(micro), "n_matched": len(hit),
        "mae_rel": round(float(np.mean(rel)), 4) if hit else None,
        "median_rel": round(float(np.median(rel)), 4) if hit else None,
        "mae_frames": round(float(np.mean([r["error_frames"] for r in hit])), 3) if hit else None,
        "rows": hit,
    }  # fmt: skip


def _emotion_metrics(rows: list[dict]) -> dict:
    extra = sorted({r["predicted"] for r in rows} - {*SCORED_EMOTIONS, NO_EMOTION})
    classes = [*SCORED_EMOTIONS, NO_EMOTION, *extra]
    out: dict = {"n": len(rows), "classes": classes, "rows": rows}
    if not rows:
        return out
    idx = {c: k for k, c in enumerate(classes)}
    y_true = np.array([idx[r["label"]] for r in rows])
    y_pred = np.array([idx[r["predicted"]] for r in rows])
    cm = confusion(y_true, y_pred, len(classes))
    uf1, uar = uf1_uar(cm)  # over the truth classes present
    correct = int((y_true == y_pred).sum())
    hm = [r for r in rows if r["confidence"] in AU_CONFIDENCES]
    hm_correct = sum(r["label"] == r["predicted"] for r in hm)
    return out | {
        "correct": correct, "accuracy": round(correct / len(rows), 4), "uar": round(uar, 4),
        "uf1": round(uf1, 4),
        "truth_classes": [c for c in SCORED_EMOTIONS if (y_true == idx[c]).any()],
        "confusion": cm[: len(SCORED_EMOTIONS)].tolist(),
        "predicted_none": int((y_pred == idx[NO_EMOTION]).sum()),
        "high_medium": {"n": len(hm), "correct": hm_correct,
                        "accuracy": round(hm_correct / len(hm), 4) if hm else None},
    }  # fmt: skip


def _non_expression(scores: Sequence[ClipScore]) -> dict:
    rows = [r for s in scores for r in s.non_expression_rows]
    other = [r for s in scores for r in s.other_kind_rows]
    return {
        "n_events": len(rows),
        "by_kind": dict(Counter(r["kind"] for r in rows)),
        "with_emotional_interval": sum(r["error"] for r in rows),
        "errors": [r for r in rows if r["error"]],
        "rows": rows,
        "other_kind_intervals": {
            "n": len(other),
            "by_kind": dict(Counter(r["kind"] for r in other)),
            "overlapping_labelled": sum(bool(r["overlaps"]) for r in other),
            "rows": other,
        },
    }
