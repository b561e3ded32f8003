"""3D patch embedding and absolute position embedding built from SAM's 2D ones.

The paper approximates a k x k x k patch convolution by a frozen in-plane 1 x k x k convolution
(SAM's 2D kernel, summed over RGB because CT/MR has one channel) followed by a trainable depthwise
k x 1 x 1 convolution along the slice axis. The depthwise kernel starts as an average over the k
slices, so on a volume of identical slices the 3D embedding equals SAM's 2D embedding of one slice:
training starts from SAM's function instead of from noise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed3D(nn.Module):
    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        p = patch_size
        self.in_plane = nn.Conv3d(in_channels, embed_dim, kernel_size=(1, p, p), stride=(1, p, p))
        self.depth = nn.Conv3d(embed_dim, embed_dim, kernel_size=(p, 1, 1), stride=(p, 1, 1),
                               groups=embed_dim, bias=False)
        nn.init.constant_(self.depth.weight, 1.0 / p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, D, H, W) -> channels-last tokens (B, D/p, H/p, W/p, embed_dim)."""
        x = self.depth(self.in_plane(x))
        return x.permute(0, 2, 3, 4, 1)


class PositionEmbedding3D(nn.Module):
    """Frozen SAM (h, w) table resampled to the token grid, plus a learnable depth table."""

    def __init__(self, embed_dim: int, pretrain_grid: int, max_depth_tokens: int) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, pretrain_grid, pretrain_grid, embed_dim))
        self.depth_embed = nn.Parameter(torch.zeros(1, max_depth_tokens, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, d, h, w, c = tokens.shape
        plane = self.pos_embed
        if plane.shape[1:3] != (h, w):
            # area-style downsampling keeps the table's mean energy; bilinear when upsampling
            plane = F.interpolate(plane.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                  align_corners=False, antialias=h < plane.shape[1]).permute(0, 2, 3, 1)
        depth = self.depth_embed
        if depth.shape[1] != d:
            depth = F.interpolate(depth.permute(0, 2, 1), size=d, mode="linear", align_corners=False).permute(0, 2, 1)
        return tokens + plane[:, None] + depth[:, :, None, None, :]
