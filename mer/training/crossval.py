"""Subject-grouped cross-validation and the pipeline's apex error on whole clips.

Leave-one-subject-out (LOSO) on real data sets, ``k`` identity-grouped folds on the
synthetic set (no identity in both train and test), a fixed number of epochs (no model
selection on test folds), metrics on predictions pooled over all folds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mer.datasets.common import Sample
from mer.inference import InProcessBackend, LoadedModel
from mer.models.cards import DSSI_MEAN, DSSI_STD, PAIR_MEAN, PAIR_STD, au_card
from mer.schemas import NO_EMOTION
from mer.training.config import TrainConfig
from mer.training.data import PreparedClip, read_rgb
from mer.training.loops import predict, train_au, train_emotion
from mer.training.metrics import confusion, emotional_metrics, per_au_f1, uf1_uar

if TYPE_CHECKING:  # the pipeline module imports cv2 / mediapipe: only for the type
    from mer.pipeline import AnalysisConfig


def group_folds(groups: Sequence[str], k: int | None, seed: int = 0) -> list[set[str]]:
    """Split the distinct groups into ``k`` folds (LOSO when k is None)."""
    uniq = sorted(set(groups))
    if k is None or k >= len(uniq):
        return [{g} for g in uniq]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    return [{uniq[i] for i in order[f::k]} for f in range(k)]


def cross_validate(
    clips: Sequence[PreparedClip],
    classes: Sequence[str],
    cfg: TrainConfig,
    k: int | None,
    train_aus: bool = True,
    log_fn: Callable[[str], None] | None = None,
    fit_emotion: bool = True,
    train_only: Sequence[PreparedClip] = (),
    on_fold: Callable[[set[str], object], None] | None = None,
) -> dict:
    """Subject-grouped CV; metrics on predictions pooled over all folds.

    ``train_aus`` / ``fit_emotion`` switch either model off (ablations of one model); the
    emotion keys are then absent (AU keys likewise). ``train_only`` clips (another data set
    of the same subjects) join each fold's training when their subject is not tested in
    that fold; they are never scored, so the metrics stay those of ``clips``.
    ``on_fold(test_subjects, au_model)`` is called with each fold's AU detector (trained
    without the fold's test subjects; :attr:`PreparedClip.subject` keys), e.g. to spot the
    apex of those subjects' clips with it (:func:`fold_backends`).

    Returns:
        ``{"uf1", "uar", "confusion", "classes", "au_f1", "au_macro_f1", "folds", ...}``.
    """
    folds = group_folds([c.subject for c in clips], k, cfg.seed)
    y_true, y_pred, y_prob, au_t, au_p = [], [], [], [], []
    y_prob_plain: list[np.ndarray] = []
    t0 = time.perf_counter()
    for f, test in enumerate(folds):
        train = [c for c in [*clips, *train_only] if c.subject not in test]
        held = [c for c in clips if c.subject in test]
        if log_fn:
            log_fn(f"fold {f + 1}/{len(folds)}: {len(train)} train, {len(held)} test clips")
        ev = [c for c in held if c.label in classes] if fit_emotion else []
        if ev:
            model = train_emotion(train, classes, cfg)
            x_ev = np.stack([c.dssi for c in ev])
            p = predict(model, x_ev, DSSI_MEAN, DSSI_STD, False)
            y_true += [list(classes).index(c.label) for c in ev]
            y_pred += list(p.argmax(1))
            y_prob.append(p)
            if cfg.flip_tta:  # the same model without test-time mirroring
                model.flip_tta = False
                y_prob_plain.append(predict(model, x_ev, DSSI_MEAN, DSSI_STD, False))
        if train_aus:
            au_model = train_au(train, cfg)
            if on_fold is not None:
                on_fold(set(test), au_model)
            au_p.append(predict(au_model, np.concatenate([c.pairs for c in held]),
                                 PAIR_MEAN, PAIR_STD, True))  # fmt: skip
            au_t.append(np.concatenate([c.pair_targets for c in held]))
    res: dict = {"classes": list(classes), "n_test_clips": len(y_true), "folds": len(folds),
                 "seconds": round(time.perf_counter() - t0, 1), "config": asdict(cfg)}  # fmt: skip
    if y_true:
        cm = confusion(np.array(y_true), np.array(y_pred), len(classes))
        uf1, uar = uf1_uar(cm)
        res |= {"uf1": uf1, "uar": uar, "confusion": cm.tolist()}
    if NO_EMOTION in classes and y_prob:
        res["emotional"] = emotional_metrics(np.array(y_true), np.concatenate(y_prob), classes)
    if y_prob_plain:
        pp = np.concatenate(y_prob_plain)
        uf1_p, uar_p = uf1_uar(confusion(np.array(y_true), pp.argmax(1), len(classes)))
        res["without_flip_tta"] = {"uf1": uf1_p, "uar": uar_p}
        if NO_EMOTION in classes:
            res["without_flip_tta"]["emotional"] = emotional_metrics(np.array(y_true), pp, classes)
    if train_aus and au_t:
        f1 = per_au_f1(np.concatenate(au_t), np.concatenate(au_p))
        res["au_f1"] = f1
        res["au_macro_f1"] = float(np.mean(list(f1.values()))) if f1 else 0.0
    return res


def fold_backends(fold_models: Sequence[tuple[set[str], object]], cfg: TrainConfig) -> dict:
    """Subject key -> an in-process backend holding the AU detector of the fold that tested
    that subject (no emotion model), for leakage-free apex spotting in :func:`apex_mae`.

    Args:
        fold_models: ``(test subject keys, AU detector)`` per fold, from ``on_fold`` of
            :func:`cross_validate`; cfg: the configuration they were trained with.
    """
    out: dict = {}
    for f, (subjects, model) in enumerate(fold_models):
        meta = au_card(cfg, version=f"fold{f + 1}")
        backend = InProcessBackend(None, LoadedModel(model, meta, "", Path(f"fold{f + 1}")))
        out |= {subj: backend for subj in subjects}
    return out


def apex_mae(
    samples: Sequence[Sample],
    n: int = 30,
    seed: int = 0,
    backends: Mapping | None = None,
    config: AnalysisConfig | None = None,
) -> dict:
    """Apex spotting error of the pipeline on whole clips (frames read from disk).

    Args:
        samples: annotated clips; ``n`` of them are drawn with ``seed``.
        backends: subject key (:attr:`Sample.subject_key`) -> inference backend whose AU
            detector never saw that subject (:func:`fold_backends`); the apex then also
            uses its activity (:func:`mer.spotting.apex_curve`). None: motion only (a
            detector trained on the same clips would leak their annotations).
        config: pipeline parameters (:class:`mer.pipeline.AnalysisConfig`); default ones.

    Returns:
        ``{"mae_frames", "mae_rel", "median_rel", "n", "au_detector"}``: mean |predicted -
        annotated apex| in frames and relative to each clip's onset-to-offset length, the
        median of the relative errors and which AU detector took part.

    Raises:
        KeyError: ``backends`` lacks a drawn clip's subject.
    """
    from mer.pipeline import analyze_frames  # cv2 / MediaPipe: only when clips are spotted
    from mer.video import DecodedFrame

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(samples), size=min(n, len(samples)), replace=False)
    errs, rel = [], []  # (the median is reported too: a few missed movements dominate the mean)
    motion_only = InProcessBackend(None, None)
    for i in pick:
        s = samples[int(i)]
        frames = (
            DecodedFrame(j, t, read_rgb(p))
            for j, (t, p) in enumerate(zip(s.timestamps_s, s.frame_paths, strict=True))
        )
        eff_fps = (s.n_frames - 1) / max(s.timestamps_s[-1], 1e-6)
        backend = motion_only if backends is None else backends[s.subject_key]
        r = analyze_frames(
            frames, fps=eff_fps, expected_frames=s.n_frames, backend=backend, config=config
        )
        pred = r.apex.frame if r.apex else 0
        # error in the data set's frame numbering (synthetic sets may write a frame step)
        e = abs(s.frame_numbers[pred] - s.apex)
        errs.append(e)
        rel.append(e / max(1, s.offset - s.onset))
    who = "none (motion only)" if backends is None else "fold models (held-out identities)"
    return {"mae_frames": float(np.mean(errs)), "mae_rel": float(np.mean(rel)),
            "median_rel": float(np.median(rel)), "n": len(errs), "au_detector": who}  # fmt: skip
