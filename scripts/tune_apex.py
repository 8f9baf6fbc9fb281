"""Choose the apex curve's AU-activity weight (``SpottingConfig.au_weight``) without
touching the clips `mer evaluate` scores.

    .venv/bin/python scripts/tune_apex.py /work/data/synth_v4 [--clips 1200] \
        [--weights 0 0.5 1 2 4] [--smooth 0.03] [--folds 3] [--au-epochs 6]

Trains the AU detector of each identity-grouped fold (as `mer evaluate` does, same seed and
prepared-clip cache), then spots the apex of ``--clips`` tuning clips drawn from those that
`mer evaluate --apex-clips 80` does *not* score, each with the detector of the fold that
held its identity out, once per weight. Prints the relative apex MAE per weight (the
weight with the smallest one is the default in :class:`mer.spotting.SpottingConfig`).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--clips", type=int, default=1200)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0])
    ap.add_argument("--smooth", type=float, nargs="+", default=[0.03])
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--au-epochs", type=int, default=6)
    ap.add_argument("--eval-clips", type=int, default=80, help="what `mer evaluate` scores")
    ap.add_argument("--cache", type=Path, default=Path("reports/synth_v4"))
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()

    from mer.cli import _load
    from mer.pipeline import AnalysisConfig
    from mer.training import (
        TrainConfig,
        apex_mae,
        cross_validate,
        dataset_classes,
        fold_backends,
        prep_cache_path,
        prepare_roots,
    )

    samples = _load("synth", a.data_dir)
    cfg = TrainConfig(au_epochs=a.au_epochs, seed=0)
    clips, _ = prepare_roots(samples, [], cfg, prep_cache_path(a.cache, cfg), a.workers)
    fold_models: list = []
    cross_validate(clips, dataset_classes(samples), cfg, a.folds, fit_emotion=False, log_fn=print,
                   on_fold=lambda test, au: fold_models.append((test, au)))  # fmt: skip
    backends = fold_backends(fold_models, cfg)
    # the clips apex_mae(samples, n=eval_clips, seed=0) scores are left out of the tuning
    scored = np.random.default_rng(0).choice(len(samples), size=a.eval_clips, replace=False)
    rest = np.setdiff1d(np.arange(len(samples)), scored)
    tune = np.random.default_rng(1).choice(rest, size=min(a.clips, len(rest)), replace=False)
    tune_samples = [samples[int(i)] for i in tune]
    base = AnalysisConfig()
    for sm in a.smooth:
        for w in a.weights:
            spot = replace(base.spotting, au_weight=w, au_smooth_s=sm)
            r = apex_mae(tune_samples, n=len(tune_samples), backends=backends,
                         config=replace(base, spotting=spot))  # fmt: skip
            print(f"au_weight {w:g} au_smooth_s {sm:g}: apex MAE {100 * r['mae_rel']:.1f} % "
                  f"(median {100 * r['median_rel']:.1f} %, {r['n']} clips)")  # fmt: skip


if __name__ == "__main__":
    main()
