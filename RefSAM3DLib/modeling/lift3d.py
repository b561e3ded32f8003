"""Lifting per-slice 2D features to 3D: trainable 3D adapters on the frozen encoder's stage outputs.

Each stage map (D slices stacked into a volume) gets 3DSAM-adapter-style bottleneck adapters
x + Up(GELU(DWConv(GELU(Down(LN(x)))))), whose depthwise 3 x 1 x 1 convolution mixes neighbouring slices
(the 2D encoder already gives every token its in-plane context; a full 3x3x3 kernel cost 3x more in
training on the CPU for no extra view across slices).
The up-projections start at zero, so an untrained lift returns the 2D features unchanged and the
model starts as the pretrained 2D network applied slice by slice (MA-SAM's initialisation argument).
The embedding gets two adapters, the second with a dilation of 2 across slices, for a wider view in depth.
"""
from __future__ import annotations

import torch
from torch import nn

from .depthwise3d import DepthwiseConv3d


class SliceAdapter3D(nn.Module):
    def __init__(self, dim: int, hidden: int, depth_dilation: int = 1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, hidden)
        self.conv = DepthwiseConv3d(hidden, (3, 1, 1), dilation=(depth_dilation, 1, 1))
        self.up = nn.Linear(hidden, dim)
        self.act = nn.GELU()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, D, H, W) -> same shape."""
        t = x.permute(0, 2, 3, 4, 1)
        y = self.act(self.down(self.norm(t)))
        y = self.act(self.conv(y.permute(0, 4, 1, 2, 3))).permute(0, 2, 3, 4, 1)
        return (t + self.up(y)).permute(0, 4, 1, 2, 3)


class Lift3D(nn.Module):
    def __init__(self, channels: tuple[int, ...], hidden: tuple[int, ...]) -> None:
        super().__init__()
        adapters = []
        for i, (c, h) in enumerate(zip(channels, hidden)):
            stack = [SliceAdapter3D(c, h)]
            if i == len(channels) - 1:
                stack.append(SliceAdapter3D(c, h, depth_dilation=2))
            adapters.append(nn.Sequential(*stack))
        self.adapters = nn.ModuleList(adapters)

    def forward(self, slice_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-slice maps [(B, D, C, h, w) ...] -> 3D stage maps [(B, C, D, h, w) ...] (float32)."""
        param = self.adapters[0][0].up.weight
        return [adapter(m.to(param.dtype).transpose(1, 2)) for adapter, m in zip(self.adapters, slice_maps)]
