"""3D mask decoder: SAM's two-way transformer, progressive x2 upsampling to full resolution with
U-shaped skips from encoder stages 3/2/1, a hypernetwork mask head, a final fusion with the raw
image (paper 3.4), and a presence head (ours) that says whether the referred structure is in view.

Token order fed to the transformer: [presence, mask, sparse prompt tokens...].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, ChannelLayerNorm
from .config import RefSAM3DConfig
from .two_way_transformer import TwoWayTransformer


@dataclass
class DecoderOutput:
    logits: torch.Tensor  # (B, 1, D, H, W) at the input window's resolution
    low_res_logits: torch.Tensor  # (B, 1, 4d, 4h, 4w): the next click's dense prompt
    presence_logits: torch.Tensor  # (B,)


class MaskDecoder3D(nn.Module):
    def __init__(self, config: RefSAM3DConfig) -> None:
        super().__init__()
        dim = config.neck_dim
        chans = config.decoder_channels
        self.transformer = TwoWayTransformer(config.decoder_depth, dim, config.decoder_heads, config.decoder_mlp_dim)
        self.presence_token = nn.Embedding(1, dim)
        self.mask_token = nn.Embedding(1, dim)
        ins = (dim,) + tuple(chans[:-1])
        self.upscaling = nn.ModuleList(nn.ConvTranspose3d(i, o, kernel_size=2, stride=2) for i, o in zip(ins, chans))
        self.upscaling_norms = nn.ModuleList(ChannelLayerNorm(c) for c in chans[:-1])
        self.skip_projections = nn.ModuleList(nn.Conv3d(dim, chans[i], kernel_size=1)
                                              for i in range(min(3, len(chans))))
        self.hypernetwork = MLP(dim, dim, chans[-1], 3)
        fuse = config.fuse_channels
        self.fuse = nn.Sequential(nn.Conv3d(chans[-1] + 2, fuse, kernel_size=3, padding=1),
                                  nn.InstanceNorm3d(fuse, affine=True), nn.GELU(), nn.Conv3d(fuse, 1, kernel_size=1))
        self.presence_head = MLP(dim, dim, 1, 2)
        self.low_res_size = tuple(4 * g for g in config.token_grid)

    def forward(self, image_embedding: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor, skips: list[torch.Tensor], image: torch.Tensor) -> DecoderOutput:
        """image_embedding F'_4 and dense (B, C, d, h, w); sparse (B, T, C); skips [F'_1, F'_2, F'_3];
        image: the normalised input window (B, 1, D, H, W)."""
        b, c, d, h, w = image_embedding.shape
        head = torch.cat([self.presence_token.weight, self.mask_token.weight]).to(sparse.dtype)
        tokens = torch.cat([head[None].expand(b, -1, -1), sparse], dim=1)
        tokens, src = self.transformer(image_embedding + dense, image_pe.expand(b, -1, -1, -1, -1), tokens)
        x = src.transpose(1, 2).reshape(b, c, d, h, w)
        last = len(self.upscaling) - 1
        for i, up in enumerate(self.upscaling):
            x = up(x)
            if i < len(self.skip_projections):
                skip = self.skip_projections[i](skips[2 - i])
                x = x + F.interpolate(skip, size=x.shape[2:], mode="trilinear", align_corners=False)
            x = F.gelu(self.upscaling_norms[i](x) if i < last else x)
        weights = self.hypernetwork(tokens[:, 1])
        logit = torch.einsum("bc,bcdhw->bdhw", weights, x)[:, None]
        logits = logit + self.fuse(torch.cat([x, logit, image.to(x.dtype)], dim=1))
        low_res = F.adaptive_avg_pool3d(logits, self.low_res_size)
        presence = self.presence_head(tokens[:, 0])[:, 0]
        return DecoderOutput(logits, low_res, presence)
