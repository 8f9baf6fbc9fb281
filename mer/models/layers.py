"""Building blocks shared by the models: conv-BN-ReLU, a ResNet basic block, a compact
backbone and the embedded-Gaussian non-local block.

All tensors are float32, NCHW.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ConvBnAct(nn.Sequential):
    """``Conv2d (no bias) -> BatchNorm2d -> ReLU``; ``(B, Cin, H, W) -> (B, Cout, H/s, W/s)``."""

    def __init__(
        self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, act: bool = True
    ) -> None:
        super().__init__(
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_chs),
            nn.ReLU(inplace=True) if act else nn.Identity(),
        )


class BasicBlock(nn.Module):
    """ResNet basic block (He et al., CVPR 2016), as in timm's ``resnet.BasicBlock``.

    ``(B, Cin, H, W) -> (B, Cout, ceil(H/stride), ceil(W/stride))``; a 1x1 conv-BN shortcut
    when the shape changes.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvBnAct(in_chs, out_chs, 3, stride)
        self.conv2 = ConvBnAct(out_chs, out_chs, 3, 1, act=False)
        self.downsample: nn.Module = (
            ConvBnAct(in_chs, out_chs, 1, stride, act=False)
            if stride != 1 or in_chs != out_chs
            else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)
        nn.init.zeros_(self.conv2[1].weight)  # zero-init last BN gamma: block starts as identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.downsample(x))


class CompactBackbone(nn.Module):
    """Small CNN for training from scratch: a stride-2 3x3 stem, then one
    :class:`BasicBlock` per stage (the first at stride 1, the others at stride 2).

    ``(B, in_chans, H, W)`` float32 -> ``(B, channels[-1], H/2^len(channels), ...)``; with the
    default channels and 112x112 input the map is 7x7.
    """

    def __init__(self, in_chans: int = 1, channels: Sequence[int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        self.stem = ConvBnAct(in_chans, channels[0], 3, 2)
        stages = []
        prev = channels[0]
        for i, c in enumerate(channels):
            stages.append(BasicBlock(prev, c, stride=1 if i == 0 else 2))
            prev = c
        self.stages = nn.Sequential(*stages)
        self.num_features = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block with residual (Wang, Girshick, Gupta, He,
    "Non-local Neural Networks", CVPR 2018), 2-D spatial version.

    ``y_i = 1/C(x) sum_j exp(theta(x_i)^T phi(x_j)) g(x_j)``, ``z = W_z y + x``; theta, phi, g
    are 1x1 convs to ``inter_chs`` channels, ``W_z`` a 1x1 conv + BN whose gamma starts at 0 so
    the block starts as the identity (as in the paper).

    ``(B, C, H, W) -> (B, C, H, W)`` float32. The attention map ``(B, HW, HW)`` of the last
    call is kept in ``self.last_attention`` (detached) for inspection.
    """

    def __init__(self, in_chs: int, inter_chs: int | None = None) -> None:
        super().__init__()
        inter = inter_chs or max(in_chs // 2, 1)
        self.theta = nn.Conv2d(in_chs, inter, 1)
        self.phi = nn.Conv2d(in_chs, inter, 1)
        self.g = nn.Conv2d(in_chs, inter, 1)
        self.w_z = nn.Sequential(nn.Conv2d(inter, in_chs, 1, bias=False), nn.BatchNorm2d(in_chs))
        nn.init.zeros_(self.w_z[1].weight)
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        phi = self.phi(x).flatten(2)  # (B, C', HW)
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, HW, C')
        attn = F.softmax(theta @ phi, dim=-1)  # (B, HW, HW), softmax = embedded Gaussian
        self.last_attention = attn.detach()
        y = (attn @ g).transpose(1, 2).reshape(b, -1, h, w)
        return x + self.w_z(y)
