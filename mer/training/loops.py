"""Training loops of SMA-STN and the AU detector, and the AU threshold calibration.

Fixed seeds, class-balanced sampling (SMA-STN) or ``pos_weight`` (AU detector), random
horizontal flips; the forward pass at evaluation is :func:`mer.inference.forward_probs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from mer.inference import forward_probs, normalise
from mer.models import create_model
from mer.models.cards import DSSI_MEAN, DSSI_STD, PAIR_MEAN, PAIR_STD, au_kwargs, emotion_kwargs
from mer.models.losses import sma_stn_loss
from mer.schemas import AU_NAMES
from mer.training.config import TrainConfig
from mer.training.data import PreparedClip

#: Samples per forward pass when scoring prepared clips.
PREDICT_BATCH = 128


def predict(model: Any, x_u8: np.ndarray, mean: float, std: float, multilabel: bool) -> np.ndarray:
    """``(N, ...)`` uint8 inputs -> ``(N, n_outputs)`` float32 probabilities
    (:func:`mer.inference.forward_probs` in batches of :data:`PREDICT_BATCH`)."""
    return forward_probs(model, x_u8, mean, std, multilabel, batch_size=PREDICT_BATCH)


def _setup(cfg: TrainConfig) -> None:
    """Seed torch and set its threads for one training run."""
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)


def augment(
    x: torch.Tensor, rng: np.random.Generator, u_index: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Random horizontal flip of the whole sample (AUs and emotions are symmetric).

    Args:
        x: ``(B, ..., H, W)`` normalised float tensor (flow channels centred on 0).
        u_index: index (after the batch axis) of the horizontal flow channel, negated with
            the flip (a mirrored movement to the right is a movement to the left); None when
            the input has no flow.
    """
    flip = torch.from_numpy(rng.random(len(x)) < 0.5)
    x = x.clone()
    xf = torch.flip(x[flip], dims=[-1])
    if u_index is not None:
        xf[(slice(None), *u_index)] *= -1.0
    x[flip] = xf
    return x


def train_emotion(
    clips: Sequence[PreparedClip],
    classes: Sequence[str],
    cfg: TrainConfig,
    log_fn: Callable[[str], None] | None = None,
) -> torch.nn.Module:
    """Train SMA-STN on the clips whose label is in ``classes``; returns it in eval mode."""
    _setup(cfg)

    data = [c for c in clips if c.label in classes]
    x_all = normalise(np.stack([c.dssi for c in data]), DSSI_MEAN, DSSI_STD)
    y_all = torch.tensor([list(classes).index(c.label) for c in data])
    counts = torch.bincount(y_all, minlength=len(classes)).float().clamp(min=1)
    weights = (counts.sum() / counts)[y_all]  # class-balanced sampling
    model = create_model("sma_stn", **emotion_kwargs(cfg, len(classes)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.emotion_epochs * max(1, len(data) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for step in range(steps):
        idx = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen)
        xb = augment(x_all[idx], rng, (slice(None), 1) if cfg.flow else None)
        # every neutral input is the same all-zero DSSI: one row serves the whole batch
        out = sma_stn_loss(model, xb, y_all[idx], lambda_de=cfg.lambda_de,
                           margin=cfg.de_margin, x_neutral=torch.zeros_like(xb[:1]))  # fmt: skip
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        sched.step()
        if log_fn and (step % 50 == 0 or step == steps - 1):
            log_fn(f"emotion step {step + 1}/{steps} loss {out['loss'].item():.3f} "
                   f"ce {out['ce'].item():.3f} de {out['de'].item():.3f}")  # fmt: skip
    return model.eval()


def calibrate_au_thresholds(model, clips: Sequence[PreparedClip]) -> dict[str, float]:
    """Set each AU's decision threshold on held-out clips and fold it into the classifier.

    For every AU with positives in ``clips``, the threshold in 0.05, 0.10, ..., 0.95 with
    the best F1 (ties: the one nearest 0.5) is found on the model's probabilities; the
    classifier bias is then shifted by ``-logit(threshold)``, so that probability 0.5 of the
    returned model is that threshold (what the pipeline and the F1 at 0.5 use). The class
    balancing of the training loss (``pos_weight``) calibrates every AU to a balanced prior;
    for rare AUs that over-calls at 0.5. Our choice, set on training identities only.

    Args:
        model: an :class:`~mer.models.au_detector.AUDetector` in eval mode (changed in place).
        clips: held-out calibration clips (never test clips).

    Returns:
        AU name -> threshold applied (0.5 where the clips have no positive).
    """
    probs = predict(model, np.concatenate([c.pairs for c in clips]), PAIR_MEAN, PAIR_STD, True)
    targets = np.concatenate([c.pair_targets for c in clips]) > 0.5
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    out: dict[str, float] = {}
    with torch.no_grad():
        for j, name in enumerate(AU_NAMES):
            t = targets[:, j]
            if not t.any():
                out[name] = 0.5
                continue
            pred = probs[:, j][:, None] >= grid[None, :]  # (N, G)
            tp = (pred & t[:, None]).sum(0)
            f1 = 2 * tp / (pred.sum(0) + t.sum())
            best = np.flatnonzero(f1 >= f1.max() - 1e-12)
            thr = float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])
            out[name] = thr
            model.fc.bias[j] -= float(np.log(thr / (1.0 - thr)))
    return out


def train_au(
    clips: Sequence[PreparedClip], cfg: TrainConfig, log_fn: Callable[[str], None] | None = None
) -> torch.nn.Module:
    """Train the AU detector on the clips' pairs; returns it in eval mode.

    With ``cfg.au_calibration > 0`` that share of the identities (at least one, when there
    are two or more) is held out of training and sets the AU thresholds
    (:func:`calibrate_au_thresholds`); the applied thresholds are in the returned model's
    ``au_thresholds`` attribute (AU name -> threshold).
    """
    _setup(cfg)

    calib: list[PreparedClip] = []
    subjects = sorted({c.subject for c in clips})
    if cfg.au_calibration > 0 and len(subjects) >= 2:
        rng_c = np.random.default_rng(cfg.seed + 1)
        n_cal = min(len(subjects) - 1, max(1, round(cfg.au_calibration * len(subjects))))
        held = {subjects[i] for i in rng_c.permutation(len(subjects))[:n_cal]}
        calib = [c for c in clips if c.subject in held]
        clips = [c for c in clips if c.subject not in held]
    x_all = normalise(np.concatenate([c.pairs for c in clips]), PAIR_MEAN, PAIR_STD)
    t_all = torch.from_numpy(np.concatenate([c.pair_targets for c in clips]))
    pos = t_all.mean(0).clamp(min=1e-3)
    pos_weight = ((1 - pos) / pos).clamp(max=20.0)
    model = create_model("au_detector", **au_kwargs(cfg))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.au_epochs * max(1, len(x_all) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    lossf = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(x_all), (cfg.batch_size,), generator=gen)
        loss = lossf(model(augment(x_all[idx], rng, (2,) if cfg.au_flow else None)), t_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log_fn and (step % 100 == 0 or step == steps - 1):
            log_fn(f"au step {step + 1}/{steps} loss {loss.item():.4f}")
    model.eval()
    model.au_thresholds = calibrate_au_thresholds(model, calib) if calib else {}
    if log_fn and calib:
        log_fn(f"AU thresholds on {len(calib)} held-out training clips: {model.au_thresholds}")
    return model
