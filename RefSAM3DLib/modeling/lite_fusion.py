"""Hierarchical text fusion for the ``lite`` model: the prompt enters every lifted encoder stage.

Stages at 1/4 of the slice (TinyViT stages 1 and 2 and the SAM embedding) get the paper's
cross-attention: image tokens query the projected word tokens (padding masked), F' = F + Attn(LN(F), T).
Each stage keeps its own width (160 / 320 / 256 channels); the attention runs in a narrow width of 64,
and the per-token FFN of the paper is left out: both keep the per-prompt cost of a window low on a CPU. Stage 0 sits at 1/2 of the slice, 4x more tokens than the
others, so on a CPU budget it gets a sentence-conditioned channel modulation (scale and shift from the
pooled sentence) instead of token-level attention.

Every fusion output starts at zero, so an untrained model still returns the pretrained 2D features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class StageTextAttention(nn.Module):
    """Image tokens (C wide) attend to the words in a narrow shared width, then a zero-initialised projection
    back to C: the attention costs O(tokens x C x width) instead of O(tokens x C^2), which is what makes
    per-prompt fusion on 32k tokens a window affordable on a CPU."""

    def __init__(self, dim: int, text_dim: int, heads: int, width: int = 64) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"fusion width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.norm_query = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, width)
        self.k = nn.Linear(text_dim, width)
        self.v = nn.Linear(text_dim, width)
        self.out = nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, feature: torch.Tensor, words: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """feature (B, C, D, h, w); words (B, L, text_dim); padding (B, L) True = ignore."""
        x = feature.flatten(2).transpose(1, 2)
        allowed = ~padding[:, None, None, :]  # (B, 1, 1, L)
        att = F.scaled_dot_product_attention(self._heads(self.q(self.norm_query(x))), self._heads(self.k(words)),
                                             self._heads(self.v(words)), attn_mask=allowed)
        b, h, n, d = att.shape
        x = x + self.out(att.transpose(1, 2).reshape(b, n, h * d))
        return x.transpose(1, 2).reshape(feature.shape)


class SentenceModulation(nn.Module):
    """F' = F * (1 + scale(s)) + shift(s): a per-channel, per-prompt re-weighting of a fine stage."""

    def __init__(self, dim: int, text_dim: int) -> None:
        super().__init__()
        self.to_scale_shift = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, 2 * dim))
        nn.init.zeros_(self.to_scale_shift[1].weight)
        nn.init.zeros_(self.to_scale_shift[1].bias)

    def forward(self, feature: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        scale, shift = self.to_scale_shift(sentence).chunk(2, dim=-1)
        view = (feature.shape[0], feature.shape[1]) + (1,) * (feature.ndim - 2)
        return feature * (1 + scale.reshape(view)) + shift.reshape(view)


class LiteTextFusion(nn.Module):
    def __init__(self, channels: tuple[int, int, int, int], text_dim: int, heads: tuple[int, int, int]) -> None:
        super().__init__()
        self.stage0 = SentenceModulation(channels[0], text_dim)
        self.stages = nn.ModuleList(StageTextAttention(c, text_dim, h) for c, h in zip(channels[1:], heads))

    def forward(self, maps: list[torch.Tensor], words: torch.Tensor, padding: torch.Tensor,
                sentence: torch.Tensor) -> list[torch.Tensor]:
        fused = [self.stage0(maps[0], sentence.to(maps[0].dtype))]
        fused += [stage(m, words.to(m.dtype), padding) for stage, m in zip(self.stages, maps[1:])]
        return fused
