"""SAM's 2D mask decoder with its IoU head and all four mask outputs, as LiteMedSAM trained it.

The delineation stage needs what the 3D ``lite`` decoder dropped: the IoU head (a slice's own estimate of
how good its mask is -- the stop rule of propagation and the judge between candidate boxes of a click) and
the three multi-mask outputs (SAM's answer to an ambiguous point). Names follow the checkpoints
(``mask_decoder.*``); the two-way transformer is the project's shared one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import MLP, ChannelLayerNorm
from .two_way_transformer import TwoWayTransformer


@dataclass
class SliceMasks:
    logits: torch.Tensor  # (B, K, 4g, 4g) low-resolution mask logits (K = 1, or 3 with multimask)
    iou: torch.Tensor  # (B, K) the decoder's estimate of each mask's IoU with the object


class SliceMaskDecoder(nn.Module):
    def __init__(self, dim: int = 256, depth: int = 2, heads: int = 8, mlp_dim: int = 2048, masks: int = 4,
                 iou_head_depth: int = 3, iou_head_hidden: int = 256) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer(depth, dim, heads, mlp_dim)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(masks, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2), ChannelLayerNorm(dim // 4), nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2), nn.GELU())
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(masks))
        self.iou_prediction_head = MLP(dim, iou_head_hidden, masks, iou_head_depth)

    def forward(self, embedding: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor,
                multimask: bool = False) -> SliceMasks:
        """embedding (B, C, g, g) -- one per prompt (repeat a slice's embedding for several prompts);
        image_pe (1, C, g, g); sparse (B, T, C); dense (B, C, g, g)."""
        b, c, h, w = embedding.shape
        head = torch.cat([self.iou_token.weight, self.mask_tokens.weight]).to(sparse.dtype)
        tokens = torch.cat([head[None].expand(b, -1, -1), sparse], dim=1)
        tokens, image = self.transformer(embedding + dense, image_pe.expand(b, -1, -1, -1), tokens)
        up = self.output_upscaling(image.transpose(1, 2).reshape(b, c, h, w))
        count = self.mask_tokens.weight.shape[0]
        weights = torch.stack([mlp(tokens[:, 1 + i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], 1)
        logits = (weights @ up.flatten(2)).reshape(b, count, up.shape[-2], up.shape[-1])
        iou = self.iou_prediction_head(tokens[:, 0])
        chosen = slice(1, None) if multimask else slice(0, 1)
        return SliceMasks(logits[:, chosen], iou[:, chosen])
