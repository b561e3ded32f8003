"""The 3D adapter: the only trainable path inside each frozen SAM block.

Adapter(X) = X + Up(Act(DWConv3d(Act(Down(X))))) -- the paper's Eq. I with the depthwise 3x3x3
convolution after the down-projection that gives SAM's 2D features 3D spatial awareness. The
up-projection starts at zero, so an untrained adapter is the identity and the encoder begins as
exactly SAM's function.
"""
from __future__ import annotations

import torch
from torch import nn


class Adapter3D(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.conv = nn.Conv3d(hidden, hidden, kernel_size=3, padding=1, groups=hidden)
        self.up = nn.Linear(hidden, dim)
        self.act = nn.GELU()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: channels-last (B, D, H, W, C)."""
        y = self.act(self.down(x))
        y = self.act(self.conv(y.permute(0, 4, 1, 2, 3))).permute(0, 2, 3, 4, 1)
        return x + self.up(y)
