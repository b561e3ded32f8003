"""3D prompt encoder: points, box corners, the projected sentence, and the previous mask.

Point-like prompts share one representation (SAM's): a 3D random-Fourier positional encoding of the
location plus a learned embedding of its kind. Kinds: 0 negative click, 1 positive click, 2 and 3 the
two corners of a box, -1 padding (so prompts with different numbers of clicks batch together).
The sentence vector becomes one more sparse token. The previous low-resolution mask (4x the token
grid along each axis that ``mask_stride`` downscales) is downscaled into a dense prompt for iterative correction, as in SAM.

Coordinates are voxel indices (d, h, w) of the model window, voxel centres at integer positions.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .common import ChannelLayerNorm

NEGATIVE, POSITIVE, BOX_MIN, BOX_MAX, PADDING = 0, 1, 2, 3, -1


class FourierPositionEncoding3D(nn.Module):
    """Random Fourier features of normalised (d, h, w) coordinates -> 2 * num_feats channels."""

    def __init__(self, num_feats: int) -> None:
        super().__init__()
        self.register_buffer("gaussian", torch.randn(3, num_feats))

    def encode(self, unit_coords: torch.Tensor) -> torch.Tensor:
        """unit_coords (..., 3) in [0, 1] -> (..., 2 * num_feats)."""
        x = (2 * unit_coords - 1) @ self.gaussian.to(unit_coords.dtype)
        x = 2 * math.pi * x
        return torch.cat([torch.sin(x), torch.cos(x)], dim=-1)

    def grid(self, size: tuple[int, int, int]) -> torch.Tensor:
        """Encoding at the centre of every cell of a (d, h, w) grid -> (C, d, h, w)."""
        axes = [(torch.arange(n, device=self.gaussian.device, dtype=torch.float32) + 0.5) / n for n in size]
        zz, yy, xx = torch.meshgrid(*axes, indexing="ij")
        return self.encode(torch.stack([zz, yy, xx], dim=-1)).permute(3, 0, 1, 2)

    def points(self, coords: torch.Tensor, window: tuple[int, int, int]) -> torch.Tensor:
        """Voxel coordinates (B, N, 3) of a window of size ``window`` -> (B, N, C)."""
        scale = torch.tensor(window, device=coords.device, dtype=torch.float32)
        return self.encode((coords.float() + 0.5) / scale)


class PromptEncoder3D(nn.Module):
    def __init__(self, embed_dim: int, token_grid: tuple[int, int, int], window_size: tuple[int, int, int],
                 mask_stride: tuple[int, int, int] = (2, 2, 2)) -> None:
        super().__init__()
        self.mask_stride = tuple(mask_stride)
        self.embed_dim = embed_dim
        self.token_grid = token_grid
        self.window_size = window_size
        self.pe_layer = FourierPositionEncoding3D(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.text_embed = nn.Embedding(1, embed_dim)  # marks the sentence token among the sparse tokens
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv3d(1, 4, kernel_size=mask_stride, stride=mask_stride), ChannelLayerNorm(4), nn.GELU(),
            nn.Conv3d(4, 16, kernel_size=mask_stride, stride=mask_stride), ChannelLayerNorm(16), nn.GELU(),
            nn.Conv3d(16, embed_dim, kernel_size=1))

    @property
    def mask_input_size(self) -> tuple[int, int, int]:
        return tuple(g * s * s for g, s in zip(self.token_grid, self.mask_stride))  # type: ignore[return-value]

    def dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image tokens (1, C, d, h, w)."""
        return self.pe_layer.grid(self.token_grid)[None]

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb = self.pe_layer.points(coords, self.window_size)
        pad = (labels == PADDING)[..., None]
        emb = torch.where(pad, self.not_a_point_embed.weight.to(emb.dtype), emb)
        for kind in (NEGATIVE, POSITIVE, BOX_MIN, BOX_MAX):
            emb = emb + (labels == kind)[..., None].to(emb.dtype) * self.point_embeddings[kind].weight.to(emb.dtype)
        return emb

    def forward(self, sentence: torch.Tensor | None, coords: torch.Tensor | None, labels: torch.Tensor | None,
                mask_input: torch.Tensor | None, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> sparse tokens (B, T, C) and dense prompt (B, C, d, h, w).

        sentence (B, C) or None; coords (B, N, 3) voxel coords with labels (B, N) or None;
        mask_input (B, 1, 4d, 4h, 4w) previous low-resolution logits or None.
        """
        parts = []
        if sentence is not None:
            parts.append((sentence + self.text_embed.weight.to(sentence.dtype))[:, None])
        if coords is not None and coords.shape[1] > 0:
            parts.append(self.embed_points(coords, labels))
        sparse = torch.cat(parts, dim=1) if parts else torch.zeros(batch, 0, self.embed_dim,
                                                                   device=self.no_mask_embed.weight.device)
        if mask_input is not None:
            dense = self.mask_downscaling(mask_input)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1, 1).expand(batch, -1, *self.token_grid)
        return sparse, dense


def box_to_points(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (B, 6) as (d0, h0, w0, d1, h1, w1) voxel corners -> corner coords (B, 2, 3) and labels (B, 2)."""
    lo = torch.minimum(boxes[:, :3], boxes[:, 3:])
    hi = torch.maximum(boxes[:, :3], boxes[:, 3:])
    labels = torch.tensor([BOX_MIN, BOX_MAX], device=boxes.device).expand(boxes.shape[0], 2)
    return torch.stack([lo, hi], dim=1), labels
