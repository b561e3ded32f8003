"""SAM's 2D prompt encoder, kept exactly as LiteMedSAM trained it (the delineation stage's prompt path).

Why a 2D twin of ``PromptEncoder3D``: the delineation stage runs the pretrained medical decoder slice by slice,
untouched, because on patients nothing here was trained on it draws shapes far better than any decoder we can
fine-tune on two CPU cores. Parameter names follow the published checkpoints (``prompt_encoder.*``), so the
LiteMedSAM tensors load one to one.

Coordinates are pixels (x, y) of the square encoder input, pixel centres at integer positions -- SAM adds half a
pixel before normalising, and so do we. The input's side is four times the embedding grid's: 256 (64 cells) as
LiteMedSAM was trained, but any multiple of 16 works, the positions being relative to the input.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .common import ChannelLayerNorm

NEGATIVE, POSITIVE, BOX_START, BOX_END, PADDING = 0, 1, 2, 3, -1


class FourierPositionEncoding2D(nn.Module):
    """SAM's random Fourier features of normalised (x, y) -> 2 * num_feats channels."""

    def __init__(self, num_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, unit_xy: torch.Tensor) -> torch.Tensor:
        x = (2 * unit_xy - 1) @ self.positional_encoding_gaussian_matrix.to(unit_xy.dtype)
        x = 2 * math.pi * x
        return torch.cat([torch.sin(x), torch.cos(x)], dim=-1)

    def grid(self, size: int) -> torch.Tensor:
        """Encoding at every cell centre of a ``size`` x ``size`` grid -> (C, size, size)."""
        ticks = (torch.arange(size, device=self.positional_encoding_gaussian_matrix.device,
                              dtype=torch.float32) + 0.5) / size
        yy, xx = torch.meshgrid(ticks, ticks, indexing="ij")
        return self.encode(torch.stack([xx, yy], dim=-1)).permute(2, 0, 1)

    def points(self, xy: torch.Tensor, image_size: int) -> torch.Tensor:
        return self.encode((xy.float() + 0.5) / image_size)


class SlicePromptEncoder(nn.Module):
    def __init__(self, embed_dim: int = 256) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.pe_layer = FourierPositionEncoding2D(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=2, stride=2), ChannelLayerNorm(4), nn.GELU(),
            nn.Conv2d(4, 16, kernel_size=2, stride=2), ChannelLayerNorm(16), nn.GELU(),
            nn.Conv2d(16, embed_dim, kernel_size=1))
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_pe(self, grid: int) -> torch.Tensor:
        """(1, C, grid, grid) positional encoding of the image embedding's cells."""
        return self.pe_layer.grid(grid)[None]

    def _points(self, xy: torch.Tensor, labels: torch.Tensor, image_size: int) -> torch.Tensor:
        emb = self.pe_layer.points(xy, image_size)
        emb = torch.where((labels == PADDING)[..., None], self.not_a_point_embed.weight.to(emb.dtype), emb)
        for kind in (NEGATIVE, POSITIVE, BOX_START, BOX_END):
            emb = emb + (labels == kind)[..., None].to(emb.dtype) * self.point_embeddings[kind].weight.to(emb.dtype)
        return emb

    def forward(self, points: torch.Tensor | None, point_labels: torch.Tensor | None, boxes: torch.Tensor | None,
                mask_input: torch.Tensor | None, batch: int, grid: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """-> sparse (B, T, C), dense (B, C, grid, grid) for an input of 4 * grid pixels a side.

        points (B, N, 2) x/y pixels with point_labels (B, N); boxes (B, 4) x0, y0, x1, y1 pixels; mask_input
        (B, 1, 4g, 4g) logits of an earlier mask. As in SAM, points without a box get one padding token.
        """
        device = self.no_mask_embed.weight.device
        parts = []
        if points is not None and points.shape[1]:
            xy, lab = points, point_labels
            if boxes is None:
                xy = torch.cat([xy, torch.zeros_like(xy[:, :1])], dim=1)
                lab = torch.cat([lab, torch.full_like(lab[:, :1], PADDING)], dim=1)
            parts.append(self._points(xy, lab, 4 * grid))
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2)
            kinds = torch.tensor([BOX_START, BOX_END], device=corners.device).expand(corners.shape[0], 2)
            parts.append(self._points(corners, kinds, 4 * grid))
        sparse = torch.cat(parts, dim=1) if parts else torch.zeros(batch, 0, self.embed_dim, device=device)
        if mask_input is not None:
            dense = self.mask_downscaling(mask_input)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, grid, grid)
        return sparse, dense
