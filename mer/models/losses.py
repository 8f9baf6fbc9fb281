"""DE-Loss (deviation enhancement loss) for SMA-STN, **our interpretation**.

Liu, Zheng & Zong (SMA-STN, arXiv 2010.09342) embed a "deviation enhancement loss" in
training to make features robust to subtle movement. The paper's formula is not available to
us. This module is **our design, to be ablated** (``lambda_de = 0`` is the baseline): it
amplifies the feature deviation that the movement causes relative to the neutral state.

For a clip with DSSI input ``x`` and a *neutral* input ``x0`` of the same shape (the DSSI of
a static clip, i.e. all-zero dynamic images — :func:`neutral_like`; or the DSSI of the onset
frame repeated, which is also zero for exact rank pooling), with fused features
``f = model.forward_features(x)`` and ``f0 = model.forward_features(x0)``, both ``(B, D)``:

    d_i = ||f_i - f0_i||_2 / sqrt(D)
    DE  = mean_i relu(margin - d_i)

i.e. a hinge that is zero once the movement feature is at least ``margin`` (RMS per feature
dimension) away from the neutral feature, and pushes it away otherwise. The total loss is
``cross_entropy + lambda_de * DE`` (:func:`sma_stn_loss`).

By default the neutral feature is computed in eval mode without gradient
(:func:`neutral_features`): a batch of identical all-zero inputs in train mode would give
BatchNorm zero batch variance and corrupt its running statistics; an anchored (detached)
neutral feature also keeps the loss from being satisfied by moving the neutral point.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["de_loss", "neutral_features", "neutral_like", "sma_stn_loss"]


def neutral_like(x: torch.Tensor) -> torch.Tensor:
    """Neutral DSSI input for ``x (B, S+1, C, H, W)``: all-zero dynamic images (a static
    clip), same shape / dtype / device. Zero is also the normalised value when the
    normalisation mean is 0 (the SMA-STN default)."""
    return torch.zeros_like(x)


def de_loss(
    feat_move: torch.Tensor, feat_neutral: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Deviation enhancement hinge (our interpretation, see the module docstring).

    Args:
        feat_move: ``(B, D)`` float features of the movement inputs.
        feat_neutral: ``(B, D)`` or ``(D,)`` float features of the neutral input(s).
        margin: required RMS deviation per feature dimension, > 0.

    Returns:
        Scalar float tensor ``mean(relu(margin - ||f_move - f_neutral||_2 / sqrt(D)))``; zero
        when every deviation exceeds the margin, ``margin`` when the features coincide.
    """
    if feat_move.ndim != 2:
        raise ValueError(f"feat_move must be (B, D), got {tuple(feat_move.shape)}")
    d = (feat_move - feat_neutral).norm(dim=1) / math.sqrt(feat_move.shape[1])
    return F.relu(margin - d).mean()


def neutral_features(model: nn.Module, x_neutral: torch.Tensor) -> torch.Tensor:
    """``model.forward_features(x_neutral)`` in eval mode without gradient; the model's mode
    is restored afterwards. Returns ``(B, D)`` float32, detached."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model.forward_features(x_neutral).detach()
    finally:
        model.train(was_training)


def sma_stn_loss(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    lambda_de: float = 0.1,
    margin: float = 1.0,
    x_neutral: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Total training loss ``cross_entropy + lambda_de * de_loss``.

    Args:
        model: an SMA-STN-like model with ``forward_features`` / ``forward_head``.
        x: ``(B, S+1, C, H, W)`` float32 DSSI batch.
        target: ``(B,)`` int64 class indices.
        lambda_de: DE weight; 0 disables the DE term (and skips the neutral pass).
        margin: DE margin (see :func:`de_loss`).
        x_neutral: neutral inputs, default :func:`neutral_like` ``(x)``.
        label_smoothing: passed to ``F.cross_entropy``.

    Returns:
        ``{"loss", "ce", "de"}`` scalar tensors, plus ``"logits" (B, num_classes)``.
    """
    feats = model.forward_features(x)
    logits = model.forward_head(feats)
    ce = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    if lambda_de > 0:
        f0 = neutral_features(model, neutral_like(x) if x_neutral is None else x_neutral)
        de = de_loss(feats, f0, margin)
    else:
        de = feats.new_zeros(())
    return {"loss": ce + lambda_de * de, "ce": ce, "de": de, "logits": logits}
