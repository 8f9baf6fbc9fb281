"""Per-frame multi-label Action Unit detector.

Input ``(B, K, C, H, W)`` float32: index 0 is the aligned face crop of the frame, index 1 the
aligned crop of its **neutral reference** (the onset frame / a neutral frame of the same
track), both normalised with the mean / std of the weights' card (``default_cfg``). With
``flow=True`` (weights v1.2 on, **our addition**) indices 2 and 3 carry the optical flow
``u``, ``v`` from the reference to the frame (:func:`mer.model_inputs.au_input_u8`, DIS at 128
px, in model-crop pixels): on micro amplitudes a lid moves a fraction of a 64 px model pixel,
which the difference image alone barely shows. The model forms the difference image ``frame -
neutral`` itself and feeds ``[frame, frame - neutral(, u, v)]`` (``2C (+ 2C)`` channels) to a
compact CNN (:class:`~mer.models.layers.CompactBackbone`), so subject-specific appearance is
factored out, as in reference-frame AU detection (e.g. the onset-apex differences used by the
MEGC AU works).
Output: one logit per AU of :data:`mer.schemas.AU_NAMES`, ``(B, 14)`` float32;
``sigmoid`` gives independent AU probabilities (multi-label, train with ``BCEWithLogitsLoss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mer.schemas import AU_NAMES

from .layers import CompactBackbone
from .registry import register_model
from .weights import WeightsRecordMixin

__all__ = ["AUDetector", "au_detector"]


class AUDetector(WeightsRecordMixin, nn.Module):
    """Multi-label AU detector (see the module docstring).

    Args:
        num_aus: outputs (default ``len(AU_NAMES)`` = 14).
        in_chans: channels ``C`` per image.
        channels: backbone stage widths.
        flow: the input also carries the flow images ``u, v`` (``K = 4``, else 2).
        drop_rate: dropout before the classifier.

    ``forward(x (B, K, C, H, W))`` -> logits ``(B, num_aus)`` float32;
    ``forward_features`` -> ``(B, channels[-1])``; ``forward_head`` -> logits.
    """

    def __init__(
        self,
        num_aus: int = len(AU_NAMES),
        in_chans: int = 1,
        channels: Sequence[int] = (24, 48, 96, 192),
        drop_rate: float = 0.2,
        flow: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_aus
        self.in_chans = in_chans
        self.flow = flow
        self.num_inputs = 4 if flow else 2
        self.backbone = CompactBackbone((4 if flow else 2) * in_chans, channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = self.backbone.num_features
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_aus)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K, C, H, W)`` float32 -> pooled feature ``(B, num_features)`` float32.

        Raises:
            ValueError: ``x`` is not ``(B, K, in_chans, H, W)``.
        """
        k = self.num_inputs
        if x.ndim != 5 or x.shape[1] != k or x.shape[2] != self.in_chans:
            raise ValueError(f"expected (B, {k}, {self.in_chans}, H, W), got {tuple(x.shape)}")
        frame, neutral = x[:, 0], x[:, 1]
        z = torch.cat([frame, frame - neutral, *x[:, 2:].unbind(1)], dim=1)
        return self.pool(self.backbone(z)).flatten(1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(B, num_features)`` -> logits ``(B, num_aus)`` float32."""
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def au_detector(**kwargs: Any) -> AUDetector:
    """AU detector, 14 AUs, widths 24-48-96-192, 1 channel by default."""
    return AUDetector(**kwargs)
