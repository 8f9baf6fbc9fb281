"""What ``mer evaluate`` runs: subject-grouped cross-validation of both models on one
data set, the ablations (each a variant of the recipe) and the pipeline's apex error,
gathered in a :class:`~mer.training.report.Report`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from mer.datasets.common import Sample
from mer.training.config import TrainConfig
from mer.training.crossval import apex_mae, cross_validate, fold_backends
from mer.training.data import PreparedClip, prep_cache_path, prepare_roots, without_flow
from mer.training.report import Report, device_description

#: The ablation groups of ``mer evaluate --ablate``, in report order.
ABLATION_GROUPS = ("flow", "au-flow", "stma", "de", "segments")
#: The main result's keys repeated as the ablation table's reference row.
_REFERENCE_KEYS = ("uf1", "uar", "emotional", "au_macro_f1")


def ablation_configs(cfg: TrainConfig, groups: Sequence[str]) -> dict[str, TrainConfig]:
    """The recipe variants of the chosen ablation groups, by report name.

    Args:
        cfg: the full recipe.
        groups: names from :data:`ABLATION_GROUPS` (``flow``: no flow channels in the DSSI;
            ``au-flow``: none in the AU input; ``stma``: no STMA; ``de``: no DE-Loss;
            ``segments``: 2 and 5 DSSI segments).

    Returns:
        ``{report name: variant}`` in the order of ``groups``.

    Raises:
        ValueError: an unknown group (the message names it and the known ones).
    """
    variants = {
        "flow": {"no flow channels (DSSI only)": replace(cfg, flow=False)},
        "au-flow": {"AU detector without flow channels": replace(cfg, au_flow=False)},
        "stma": {"no STMA": replace(cfg, use_stma=False)},
        "de": {"no DE-Loss": replace(cfg, lambda_de=0.0)},
        "segments": {"segments=2": replace(cfg, n_segments=2),
                     "segments=5": replace(cfg, n_segments=5)},
    }  # fmt: skip
    unknown = set(groups) - set(variants)
    if unknown:
        raise ValueError(f"unknown ablation {sorted(unknown)}; use {list(variants)}")
    return {name: v for g in groups for name, v in variants[g].items()}


def evaluate_cv(
    samples: Sequence[Sample],
    classes: Sequence[str],
    cfg: TrainConfig,
    out: Path,
    *,
    folds: int | None = None,
    extra: Sequence[tuple[Path, Sequence[Sample]]] = (),
    ablations: Sequence[str] = (),
    only: Literal["emotion", "au"] | None = None,
    apex_clips: int = 40,
    workers: int = 2,
    dataset: str = "",
    log_fn: Callable[[str], None] = print,
) -> Report:
    """Cross-validate SMA-STN and the AU detector, run the ablations and the apex error.

    The prepared inputs of each input configuration are cached under ``out/cache``
    (:func:`~mer.training.data.prep_cache_path`); an ablation that only drops flow channels
    reuses the full recipe's inputs less those channels (:func:`without_flow`). The apex is
    spotted with the AU detector of the fold that held each clip's identity out.

    Args:
        samples: the scored data set's clips.
        classes: emotion classes (:func:`~mer.training.data.dataset_classes`).
        cfg: the recipe.
        out: the report folder (its ``cache`` subfolder is written; the report is not).
        folds: identity-grouped folds; None: leave one subject out.
        extra: ``[(root, its clips)]`` joining each fold's training, never scored.
        ablations: groups of :data:`ABLATION_GROUPS`.
        only: train and score one model (``"emotion"`` or ``"au"``); None: both.
        apex_clips: clips for the apex MAE (0 skips it).
        workers: processes preparing the clips.
        dataset: the report's data-set description.
        log_fn: progress lines.

    Returns:
        the :class:`Report` (main metrics pooled over folds, ablations, apex).

    Raises:
        ValueError: an unknown ablation group (before any work).
    """
    variants = ablation_configs(cfg, ablations)

    def prepare(c: TrainConfig) -> tuple[list[PreparedClip], list[PreparedClip]]:
        return prepare_roots(samples, extra, c, prep_cache_path(out, c), workers)

    clips, extra_clips = prepare(cfg)
    fold_models: list = []  # (test subjects, AU detector): the apex uses the held-out fold's
    main = cross_validate(clips, classes, cfg, folds, train_aus=only != "emotion",
                          fit_emotion=only != "au", log_fn=log_fn, train_only=extra_clips,
                          on_fold=lambda test, au: fold_models.append((test, au)))  # fmt: skip
    report = Report(dataset=dataset, main=main, device=device_description())
    if "without_flip_tta" in main:
        report.ablations["no flip TTA (same models)"] = main.pop("without_flip_tta")
    for name, vcfg in variants.items():
        log_fn(f"ablation: {name}")
        vclips, vextra = clips, extra_clips
        if (vcfg.dssi_params, vcfg.pair_params) != (cfg.dssi_params, cfg.pair_params):
            same_frames = (vcfg.n_segments, vcfg.flow_size) == (cfg.n_segments, cfg.flow_size)
            drop_dssi, drop_au = cfg.flow and not vcfg.flow, cfg.au_flow and not vcfg.au_flow
            if same_frames and (drop_dssi or drop_au):
                vclips = without_flow(clips, dssi=drop_dssi, au=drop_au)
                vextra = without_flow(extra_clips, dssi=drop_dssi, au=drop_au)
            else:
                vclips, vextra = prepare(vcfg)
        au_only = vcfg.au_flow != cfg.au_flow  # the AU input changed, not the emotion's
        report.ablations[name] = cross_validate(
            vclips, classes, vcfg, folds, train_aus=au_only, fit_emotion=not au_only,
            train_only=vextra,
        )  # fmt: skip
    if report.ablations:
        report.ablations["full (reference)"] = {
            key: main[key] for key in _REFERENCE_KEYS if key in main
        }
    if apex_clips:
        backends = fold_backends(fold_models, cfg) if fold_models else None
        report.apex = apex_mae(samples, n=apex_clips, seed=cfg.seed, backends=backends)
    return report
