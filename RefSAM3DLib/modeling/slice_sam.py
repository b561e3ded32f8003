"""The pretrained 2D medical SAM (LiteMedSAM) as one module: TinyViT + prompt encoder + mask decoder.

This is the network of the delineation stage (``engine/delineate``): one axial slice, prepared as LiteMedSAM
was trained (grey, [0, 1], ``image_size`` square), a box and/or points -> a mask and its predicted IoU. Its
TinyViT is the very module the ``lite`` RefSAM3D network uses (frozen there too), so a model file carries
the image encoder once; only the 2D prompt encoder and decoder are stored beside it
(``slice_sam_weights.py``).
"""
from __future__ import annotations

import torch
from torch import nn

from .mask_decoder2d import SliceMaskDecoder, SliceMasks
from .prompt_encoder2d import SlicePromptEncoder
from .tiny_vit import TinyViT

IMAGE_SIZE = 256  # LiteMedSAM's training input: the longer side of a slice resized to 256


class SliceSAM(nn.Module):
    def __init__(self, encoder: TinyViT | None = None) -> None:
        super().__init__()
        self.image_encoder = encoder if encoder is not None else TinyViT(in_chans=1).to(
            memory_format=torch.channels_last)
        self.prompt_encoder = SlicePromptEncoder(256)
        self.mask_decoder = SliceMaskDecoder()
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "SliceSAM":
        return super().train(False)  # inference only: batch norm keeps its statistics

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) grey slices in [0, 1] -> (N, 256, S/4, S/4) image embeddings."""
        x = images.float().contiguous(memory_format=torch.channels_last)
        return self.image_encoder(x).embedding.contiguous()

    @torch.no_grad()
    def decode(self, embedding: torch.Tensor, boxes: torch.Tensor | None = None, points: torch.Tensor | None = None,
               point_labels: torch.Tensor | None = None, mask_input: torch.Tensor | None = None,
               multimask: bool = False) -> SliceMasks:
        """embedding (B, C, g, g), one per prompt; boxes (B, 4) x0 y0 x1 y1 and points (B, N, 2) x y in input
        pixels; mask_input (B, 1, 4g, 4g) logits. -> logits (B, K, 4g, 4g) at the input's scale, IoU (B, K)."""
        batch, grid = embedding.shape[0], embedding.shape[-1]
        sparse, dense = self.prompt_encoder(points, point_labels, boxes, mask_input, batch, grid)
        pe = self.prompt_encoder.dense_pe(grid).to(embedding.dtype)
        return self.mask_decoder(embedding, pe, sparse.to(embedding.dtype), dense.to(embedding.dtype), multimask)
