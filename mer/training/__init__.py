"""Training and honest evaluation of SMA-STN and the AU detector.

Protocol (mission doc, "Evaluation"): subject-grouped cross-validation — leave-one-subject-
out (LOSO) on real data sets, ``k`` identity-grouped folds on the synthetic set (no
identity in both train and test) — with a fixed number of epochs (no model selection on
test folds), fixed seeds, and UF1 / UAR computed on the predictions **pooled over all
folds** (not averaged per fold). AU detection: per-AU F1 at 0.5 and their macro mean.

One module per concern: :mod:`~mer.training.config` (the recipe),
:mod:`~mer.training.data` (clips -> model inputs), :mod:`~mer.training.loops` (training),
:mod:`~mer.training.metrics`, :mod:`~mer.training.crossval` (folds, cross-validation, apex
error), :mod:`~mer.training.report`, :mod:`~mer.training.evaluate` (what ``mer evaluate``
runs: CV, ablations, apex) and :mod:`~mer.training.shipped` (what ``mer train`` runs: the
shipped checkpoints and ``MODEL_CARD.md``); the model cards are :mod:`mer.models.cards`.

Inputs are made exactly as at inference: :func:`mer.preprocess.align_frames` crops (128 px),
:func:`mer.model_inputs.dssi_u8_from_crops` DSSI and :func:`mer.model_inputs.au_input_u8` AU inputs
(frame, local neutral reference, flow between them) as :mod:`mer.pipeline` forms them.

The names below load on first use (PEP 562): ``import mer.training.metrics`` (numpy only,
used by :mod:`mer.evaluation`) does not import torch through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mer.models.cards import (
        CHANNELS,
        DSSI_MEAN,
        DSSI_STD,
        PAIR_MEAN,
        PAIR_STD,
        au_card,
        au_kwargs,
        emotion_card,
        emotion_kwargs,
    )
    from mer.training.config import TrainConfig
    from mer.training.crossval import apex_mae, cross_validate, fold_backends, group_folds
    from mer.training.data import (
        PreparedClip,
        clip_label,
        dataset_classes,
        prep_cache_path,
        prepare_clip,
        prepare_dataset,
        prepare_roots,
        read_rgb,
        without_flow,
    )
    from mer.training.loops import (
        augment,
        calibrate_au_thresholds,
        predict,
        train_au,
        train_emotion,
    )
    from mer.training.metrics import confusion, emotional_metrics, per_au_f1, uf1_uar
    from mer.training.report import Report

#: The module that defines each public name.
_HOMES: dict[str, str] = {
    **dict.fromkeys(
        ("CHANNELS", "DSSI_MEAN", "DSSI_STD", "PAIR_MEAN", "PAIR_STD", "au_card", "au_kwargs",
         "emotion_card", "emotion_kwargs"),
        "mer.models.cards",
    ),
    "TrainConfig": "mer.training.config",
    **dict.fromkeys(
        ("apex_mae", "cross_validate", "fold_backends", "group_folds"), "mer.training.crossval"
    ),
    **dict.fromkeys(
        ("PreparedClip", "clip_label", "dataset_classes", "prep_cache_path", "prepare_clip",
         "prepare_dataset", "prepare_roots", "read_rgb", "without_flow"),
        "mer.training.data",
    ),
    **dict.fromkeys(
        ("augment", "calibrate_au_thresholds", "predict", "train_au", "train_emotion"),
        "mer.training.loops",
    ),
    **dict.fromkeys(
        ("confusion", "emotional_metrics", "per_au_f1", "uf1_uar"), "mer.training.metrics"
    ),
    "Report": "mer.training.report",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "CHANNELS",
    "DSSI_MEAN",
    "DSSI_STD",
    "PAIR_MEAN",
    "PAIR_STD",
    "PreparedClip",
    "Report",
    "TrainConfig",
    "apex_mae",
    "au_card",
    "au_kwargs",
    "augment",
    "calibrate_au_thresholds",
    "clip_label",
    "confusion",
    "cross_validate",
    "dataset_classes",
    "emotion_card",
    "emotion_kwargs",
    "emotional_metrics",
    "fold_backends",
    "group_folds",
    "per_au_f1",
    "predict",
    "prep_cache_path",
    "prepare_clip",
    "prepare_dataset",
    "prepare_roots",
    "read_rgb",
    "train_au",
    "train_emotion",
    "uf1_uar",
    "without_flow",
]
