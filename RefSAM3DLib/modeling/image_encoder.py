"""3D ViT image encoder lifted from SAM ViT-B, with four stage taps and 3D necks.

Layout (channels-last tokens between blocks, (B, C, D, H, W) outside):
patch embed -> + position -> 12 x [adapter -> LN -> 3D attention -> + -> LN -> MLP -> +]
-> outputs of blocks ``stage_indexes`` -> one 3D neck each -> four (B, neck_dim, d, h, w) maps.
SAM's windowed blocks attend inside shifted 3D windows, its global blocks over the whole grid.
"""
from __future__ import annotations

import torch
from torch import nn

from .adapter import Adapter3D
from .attention3d import Attention3D
from .common import ChannelLayerNorm, MLPBlock
from .config import RefSAM3DConfig
from .patch_embed import PatchEmbed3D, PositionEmbedding3D
from .windows3d import merge, pad_to_windows, partition, shift_mask


class Block3D(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, adapter_dim: int,
                 window: int, shift: int, extent: tuple[int, int, int]) -> None:
        super().__init__()
        self.window = window  # 0 = global attention
        self.shift = shift
        self.adapter = Adapter3D(dim, adapter_dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention3D(dim, num_heads, extent)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))
        self._mask_cache: dict[tuple, torch.Tensor] = {}

    def _shift_mask(self, grid: tuple[int, int, int], batch: int, device: torch.device) -> torch.Tensor:
        key = (grid, device)
        if key not in self._mask_cache:
            self._mask_cache[key] = shift_mask(grid, self.window, self.shift, device)
        mask = self._mask_cache[key]
        return mask.repeat(batch, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.adapter(x)
        shortcut = x
        x = self.norm1(x)
        if self.window == 0:
            x = self.attn(x)
        else:
            b, d, h, w, _ = x.shape
            x, grid = pad_to_windows(x, self.window)
            if self.shift:
                x = torch.roll(x, shifts=(-self.shift,) * 3, dims=(1, 2, 3))
            windows = partition(x, self.window)
            mask = self._shift_mask(grid, b, x.device) if self.shift else None
            windows = self.attn(windows, mask)
            x = merge(windows, self.window, grid)
            if self.shift:
                x = torch.roll(x, shifts=(self.shift,) * 3, dims=(1, 2, 3))
            x = x[:, :d, :h, :w]
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Neck3D(nn.Module):
    """768 -> 256 channels, SAM's neck with 3D convolutions (1^3 then 3^3, no bias, LayerNorm after each)."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(dim, out_dim, kernel_size=1, bias=False)
        self.norm1 = ChannelLayerNorm(out_dim)
        self.conv2 = nn.Conv3d(out_dim, out_dim, kernel_size=3, padding=1, bias=False)
        self.norm2 = ChannelLayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(self.norm1(self.conv1(x))))


class ImageEncoder3D(nn.Module):
    def __init__(self, config: RefSAM3DConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        grid = c.token_grid
        self.patch_embed = PatchEmbed3D(1, c.embed_dim, c.patch_size)
        self.pos = PositionEmbedding3D(c.embed_dim, c.pretrain_pos_grid, max_depth_tokens=grid[0])
        self.blocks = nn.ModuleList()
        windowed_count = 0
        for i in range(c.depth):
            is_global = c.all_global or i in c.global_attn_indexes
            if is_global:
                window, shift, extent = 0, 0, grid
            else:
                window = c.attn_window
                shift = window // 2 if (c.shift_windows and windowed_count % 2 == 1) else 0
                extent = (window,) * 3
                windowed_count += 1
            self.blocks.append(Block3D(c.embed_dim, c.num_heads, c.mlp_ratio, c.adapter_dim, window, shift, extent))
        self.necks = nn.ModuleList(Neck3D(c.embed_dim, c.neck_dim) for _ in c.stage_indexes)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image (B, 1, D, H, W) -> four stage maps (B, neck_dim, D/p, H/p, W/p)."""
        x = self.pos(self.patch_embed(image))
        stages = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.config.stage_indexes:
                stages.append(x)
        return [neck(s.permute(0, 4, 1, 2, 3)) for neck, s in zip(self.necks, stages)]

    def frozen_parameter_names(self) -> list[str]:
        """SAM-derived weights that the paper keeps frozen (2D patch kernel, pos table, qkv/proj/MLP, h/w rel-pos)."""
        names = ["patch_embed.in_plane.weight", "patch_embed.in_plane.bias", "pos.pos_embed"]
        for i in range(len(self.blocks)):
            names += [f"blocks.{i}.attn.{n}" for n in ("qkv.weight", "qkv.bias", "proj.weight", "proj.bias",
                                                       "rel_pos_h", "rel_pos_w")]
            names += [f"blocks.{i}.mlp.{n}" for n in ("lin1.weight", "lin1.bias", "lin2.weight", "lin2.bias")]
        return names
