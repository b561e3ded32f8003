"""CLIP's text transformer, written with open_clip's parameter names so CLIP checkpoints load 1:1.

Why our own ~70 lines instead of instantiating open_clip: open_clip builds the whole CLIP model
(vision tower included) and ties text-tower construction to its model registry; RefSAM3D only
needs the text tower and its per-token outputs. Tokenisation still uses open_clip's BPE tokenizer,
whose vocabulary ships inside the open_clip wheel (works offline).
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _TextMLP(nn.Module):
    def __init__(self, width: int, act: str) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, width * 4)
        self.gelu = QuickGELU() if act == "quick_gelu" else nn.GELU()
        self.c_proj = nn.Linear(width * 4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class _ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, act: str) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = _TextMLP(width, act)

    def forward(self, x: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=causal)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, act: str) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(_ResidualAttentionBlock(width, heads, act) for _ in range(layers))

    def forward(self, x: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, causal)
        return x


class CLIPTextTower(nn.Module):
    """ids (B, ctx) -> (tokens after ln_final (B, ctx, width), pooled EOT @ text_projection (B, embed), eot index)."""

    def __init__(self, vocab: int, context: int, width: int, layers: int, heads: int, embed_dim: int,
                 act: str = "gelu") -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.empty(context, width))
        self.transformer = _Transformer(width, layers, heads, act)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width ** -0.5)
        causal = torch.full((context, context), float("-inf")).triu(1)
        self.register_buffer("attn_mask", causal, persistent=False)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        x = self.transformer(x, self.attn_mask[: ids.shape[1], : ids.shape[1]].to(x.dtype))
        tokens = self.ln_final(x)
        eot = ids.argmax(dim=-1)  # the EOT token has the largest id in CLIP's vocabulary
        pooled = tokens[torch.arange(ids.shape[0], device=ids.device), eot] @ self.text_projection
        return tokens, pooled, eot


@lru_cache(maxsize=1)
def _tokenizer(context: int):
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context)


def clip_tokenize(prompts: list[str], context: int = 77) -> torch.Tensor:
    """CLIP BPE ids (B, context): SOT, tokens, EOT, zero padding (truncated prompts keep their EOT)."""
    return _tokenizer(context)(prompts)
