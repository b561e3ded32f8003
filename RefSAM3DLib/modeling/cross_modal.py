"""Cross-modal projector: maps text-encoder embeddings into the image features' space (paper Eq. III).

One MLP (Linear -> GELU -> Linear -> LayerNorm) for the word embeddings; the sentence embedding
shares it when both have the same width (CLIP), otherwise gets its own (MiniLM pooled vs tokens
have equal width too, but a custom encoder may not).
"""
from __future__ import annotations

import torch
from torch import nn

from .text_features import TextFeatures


class _ProjectorMLP(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(out_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc2(self.act(self.fc1(x))))


class CrossModalProjector(nn.Module):
    def __init__(self, token_dim: int, sentence_dim: int, out_dim: int) -> None:
        super().__init__()
        self.words = _ProjectorMLP(token_dim, out_dim)
        self.sentence = None if sentence_dim == token_dim else _ProjectorMLP(sentence_dim, out_dim)

    def forward(self, text: TextFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """-> projected words T (B, L, out_dim) and sentence s (B, out_dim)."""
        words = self.words(text.tokens)
        sentence = (self.sentence or self.words)(text.pooled)
        return words, sentence
