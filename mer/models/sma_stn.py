"""SMA-STN: segmented movement-attending spatiotemporal network.

After Liu, Zheng & Zong, "SMA-STN: Segmented Movement-Attending Spatiotemporal Network for
Micro-Expression Recognition", arXiv 2010.09342. Only the abstract is available to us, so the
architecture below is **our reconstruction** of what it states:

* Input: the DSSI of a clip (:func:`mer.dssi.dssi`): ``S`` local segment dynamic images and one
  global dynamic image, stacked as ``(B, S + 1, C, H, W)`` float32 (locals first, global
  last), normalised with the mean / std of the weights' card (``default_cfg``,
  :mod:`mer.models.weights`). **Our addition**: with
  ``in_chans=3`` each image also carries the optical flow ``u, v`` of its span
  (:func:`mer.model_inputs.segment_flow`), because on micro amplitudes the dynamic image alone
  is at the level of the sensor noise; the shipped weights use it, and the report ablates it.
* A compact CNN backbone trained from scratch (:class:`~mer.models.layers.CompactBackbone`),
  shared by all segments (and, by default, by the global image).
* STMA (spatiotemporal movement-attending module): (a) long-range spatial attention over the
  last feature map with an embedded-Gaussian non-local block (Wang et al., CVPR 2018);
  (b) learned temporal segment weights: a small MLP scores each local segment's pooled
  feature, softmax over segments, weighted sum.
* Fusion of the aggregated local feature with the global branch feature (concatenation),
  then a linear classifier.
* ``use_stma=False`` (ablation) drops the non-local block and the segment MLP: the local
  features are averaged uniformly. ``use_global=False`` drops the global branch.

The DE-Loss lives in :mod:`mer.models.losses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mer.schemas import EMOTION_CLASSES_MEGC

from .layers import CompactBackbone, NonLocalBlock
from .registry import register_model
from .weights import WeightsRecordMixin

__all__ = ["SMASTN", "TemporalSegmentAttention", "mirror_dssi", "sma_stn"]


class TemporalSegmentAttention(nn.Module):
    """Learned temporal segment weights (STMA, temporal part).

    ``feats (B, S, D)`` float32 -> ``(pooled (B, D), weights (B, S))``: an MLP
    ``D -> D/r -> 1`` scores each segment, softmax over ``S``, weighted sum of the features.
    The weights of each sample sum to 1.
    """

    def __init__(self, dim: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(dim // reduction, 8)
        self.score = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1)
        )

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(self.score(feats).squeeze(-1), dim=1)  # (B, S)
        return (weights.unsqueeze(-1) * feats).sum(dim=1), weights


class SMASTN(WeightsRecordMixin, nn.Module):
    """SMA-STN classifier over DSSI input (see the module docstring).

    Args:
        num_classes: classifier outputs (3 = MEGC negative/positive/surprise; 5 for CASME II).
        num_segments: local segments ``S`` (input has ``S + 1`` images).
        in_chans: channels ``C`` of each DSSI image (1 grey dynamic image; 3 = grey dynamic
            image + flow u, v as shipped, or a colour dynamic image).
        channels: backbone stage widths.
        use_stma: non-local spatial attention + learned segment weights; False -> uniform
            average over segments, no non-local block (ablation).
        use_global: use the global dynamic image branch (ablation).
        share_backbone: the global image goes through the local backbone (else its own).
        drop_rate: dropout before the classifier.
        flip_tta: in eval mode, average the logits of ``x`` and of its horizontal mirror
            (the ``u`` flow channel negated when ``in_chans == 3``: a mirrored movement to
            the right is one to the left); training is unchanged (it flips at random).
            Our choice: faces and AUs are left-right symmetric. Off by default.

    Shapes: ``forward(x)``: ``x (B, S+1, C, H, W)`` float32 -> logits ``(B, num_classes)``
    float32. ``forward_features(x)`` -> fused feature ``(B, num_features)`` where
    ``num_features = 2 * channels[-1]`` (``channels[-1]`` without the global branch); the
    segment weights ``(B, S)`` of the last call are kept in ``self.segment_weights``
    (detached); :meth:`forward_intermediates` returns them with gradient.
    """

    def __init__(
        self,
        num_classes: int = len(EMOTION_CLASSES_MEGC),
        num_segments: int = 3,
        in_chans: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256),
        use_stma: bool = True,
        use_global: bool = True,
        share_backbone: bool = True,
        drop_rate: float = 0.2,
        flip_tta: bool = False,
    ) -> None:
        super().__init__()
        if num_segments < 1:
            raise ValueError("num_segments must be >= 1")
        self.num_classes = num_classes
        self.num_segments = num_segments
        self.in_chans = in_chans
        self.use_stma = use_stma
        self.use_global = use_global
        self.backbone = CompactBackbone(in_chans, channels)
        dim = self.backbone.num_features
        self.global_backbone: nn.Module | None = None
        if use_global and not share_backbone:
            self.global_backbone = CompactBackbone(in_chans, channels)
        self.non_local: nn.Module = NonLocalBlock(dim) if use_stma else nn.Identity()
        self.segment_attention: TemporalSegmentAttention | None = (
            TemporalSegmentAttention(dim) if use_stma else None
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = dim * (2 if use_global else 1)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)
        self.segment_weights: torch.Tensor | None = None
        self.flip_tta = flip_tta

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.num_segments + 1 or x.shape[2] != self.in_chans:
            raise ValueError(
                f"expected (B, {self.num_segments + 1}, {self.in_chans}, H, W), "
                f"got {tuple(x.shape)}"
            )

    def _embed(self, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, D)``: backbone, non-local attention (if STMA), average pool."""
        return self.pool(self.non_local(backbone(images))).flatten(1)

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """All intermediate outputs for ``x (B, S+1, C, H, W)``.

        Returns:
            ``{"features": (B, num_features), "local": (B, D), "global": (B, D)`` (only with
            the global branch), ``"segment_features": (B, S, D), "segment_weights": (B, S)}``,
            float32, attached to the graph.
        """
        self._check_input(x)
        b, s1, c, h, w = x.shape
        s = s1 - 1
        if self.use_global and self.global_backbone is None:
            emb = self._embed(self.backbone, x.reshape(b * s1, c, h, w)).reshape(b, s1, -1)
            seg, glob = emb[:, :s], emb[:, s]
        else:
            seg = self._embed(self.backbone, x[:, :s].reshape(b * s, c, h, w)).reshape(b, s, -1)
            glob = (
                self._embed(self.global_backbone, x[:, s])
                if self.global_backbone is not None
                else None
            )
        if self.segment_attention is not None:
            local, weights = self.segment_attention(seg)
        else:
            local = seg.mean(dim=1)
            weights = torch.full((b, s), 1.0 / s, dtype=seg.dtype, device=seg.device)
        out = {"local": local, "segment_features": seg, "segment_weights": weights}
        if glob is not None:
            out["global"] = glob
            out["features"] = torch.cat([local, glob], dim=1)
        else:
            out["features"] = local
        self.segment_weights = weights.detach()
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, S+1, C, H, W)`` float32 -> fused feature ``(B, num_features)`` float32."""
        return self.forward_intermediates(x)["features"]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Fused feature ``(B, num_features)`` -> logits ``(B, num_classes)`` float32."""
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.forward_head(self.forward_features(x))
        if self.flip_tta and not self.training:
            logits = 0.5 * (logits + self.forward_head(self.forward_features(mirror_dssi(x))))
        return logits


def mirror_dssi(x: torch.Tensor) -> torch.Tensor:
    """Horizontal mirror of a normalised DSSI batch ``(B, S+1, C, H, W)``: the images are
    flipped and, with flow channels (``C == 3``: dynamic image, ``u``, ``v``), ``u`` is
    negated (zero-centred after normalisation). Same shape and dtype."""
    xf = torch.flip(x, dims=[-1])
    if x.shape[2] == 3:
        xf[:, :, 1] = -xf[:, :, 1]
    return xf


@register_model
def sma_stn(**kwargs: Any) -> SMASTN:
    """SMA-STN with STMA (default: 3 classes, 3 segments, 1 channel, widths 32-64-128-256)."""
    return SMASTN(**kwargs)


@register_model
def sma_stn_nostma(**kwargs: Any) -> SMASTN:
    """Ablation: SMA-STN without STMA (uniform segment average, no non-local block)."""
    kwargs.setdefault("use_stma", False)
    return SMASTN(**kwargs)
