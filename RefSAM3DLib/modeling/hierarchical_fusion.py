"""Hierarchical cross-attention: the text prompt is fused into all four encoder stages (paper 3.3.4).

Per stage i: image tokens of F_i are the queries, the projected text tokens are keys and values
(padding after EOT masked), F'_i = F_i + Attn(LN(F_i), T) followed by a residual FFN. Each stage has
its own module, so early (low-level) and late (semantic) features learn their own use of the text.
"""
from __future__ import annotations

import torch
from torch import nn


class StageCrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.norm_query = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, dim))

    def forward(self, feature: torch.Tensor, words: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """feature (B, C, d, h, w); words (B, L, C); padding_mask (B, L) True = ignore -> (B, C, d, h, w)."""
        b, c, d, h, w = feature.shape
        x = feature.flatten(2).transpose(1, 2)
        attended = self.attn(self.norm_query(x), words, words, key_padding_mask=padding_mask, need_weights=False)[0]
        x = x + attended
        x = x + self.ffn(self.norm_ffn(x))
        return x.transpose(1, 2).reshape(b, c, d, h, w)


class HierarchicalCrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, num_stages: int = 4) -> None:
        super().__init__()
        self.stages = nn.ModuleList(StageCrossAttention(dim, heads, ffn_dim) for _ in range(num_stages))

    def forward(self, features: list[torch.Tensor], words: torch.Tensor,
                padding_mask: torch.Tensor) -> list[torch.Tensor]:
        return [stage(f, words, padding_mask) for stage, f in zip(self.stages, features)]
