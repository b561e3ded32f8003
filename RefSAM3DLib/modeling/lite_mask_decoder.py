"""The ``lite`` mask decoder: LiteMedSAM's two-way decoder extended to a stack of slices.

Kept from the pretrained 2D decoder (loaded tensor by tensor): the two-way transformer, the IoU and
four mask tokens (token 0 is the single-mask output LiteMedSAM was trained with), the hypernetwork of
mask token 0, and the two transposed convolutions that upsample 4x in-plane (kernel 1 x 2 x 2, so
each slice is upsampled exactly as the 2D network does it). New, all starting at zero so an untrained
decoder behaves as the 2D one: the merge of the text-fused stage-1/2 maps into the embedding, the skip
from stage 0 after the first upsampling, a depthwise convolution across slices on the upsampled
features, and the fusion of the logits with the raw image. Also new: a presence token and head that
say whether the referred structure is in the window at all.

Token order in the transformer: [iou, mask x 4, presence, sparse prompt tokens...].
"""
from __future__ import annotations

import torch
from torch import nn

from .common import MLP, ChannelLayerNorm
from .depthwise3d import DepthwiseConv3d
from .mask_decoder import DecoderOutput
from .two_way_transformer import TwoWayTransformer


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class LiteMaskDecoder3D(nn.Module):
    def __init__(self, channels: tuple[int, int, int, int], dim: int = 256, depth: int = 2, heads: int = 8,
                 mlp_dim: int = 2048, upscale_channels: tuple[int, int] = (64, 32)) -> None:
        super().__init__()
        c0, c1, c2, _ = channels
        u1, u2 = upscale_channels
        self.transformer = TwoWayTransformer(depth, dim, heads, mlp_dim)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(4, dim)
        self.presence_token = nn.Embedding(1, dim)
        self.stage_merge = nn.ModuleList([_zero(nn.Conv3d(c1, dim, 1)), _zero(nn.Conv3d(c2, dim, 1))])
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose3d(dim, u1, kernel_size=(1, 2, 2), stride=(1, 2, 2)), ChannelLayerNorm(u1), nn.GELU(),
            nn.ConvTranspose3d(u1, u2, kernel_size=(1, 2, 2), stride=(1, 2, 2)), nn.GELU())
        self.stage0_skip = _zero(nn.Conv3d(c0, u1, 1))
        self.depth_mix = _zero(DepthwiseConv3d(u2, (3, 1, 1)))
        self.output_hypernetwork = MLP(dim, dim, u2, 3)
        self.image_fuse = nn.Sequential(nn.Conv3d(2, 8, kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.GELU(),
                                        _zero(nn.Conv3d(8, 1, kernel_size=1)))
        self.presence_head = MLP(dim, dim, 1, 2)

    def forward(self, stages: list[torch.Tensor], image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor, image: torch.Tensor) -> DecoderOutput:
        """stages: fused [stage0 (B,c0,D,2h,2w), stage1, stage2, embedding (B,C,D,h,w)]; dense (B,C,D,h,w);
        sparse (B,T,C); image (B,1,D,4h,4w) the normalised window."""
        stage0, stage1, stage2, embedding = stages
        b, c, d, h, w = embedding.shape
        src = embedding + self.stage_merge[0](stage1) + self.stage_merge[1](stage2)
        head = torch.cat([self.iou_token.weight, self.mask_tokens.weight, self.presence_token.weight])
        tokens = torch.cat([head.to(sparse.dtype)[None].expand(b, -1, -1), sparse], dim=1)
        tokens, src = self.transformer(src + dense, image_pe.expand(b, -1, -1, -1, -1), tokens)
        x = src.transpose(1, 2).reshape(b, c, d, h, w)
        up = self.output_upscaling
        x = up[0](x) + self.stage0_skip(stage0)
        x = up[4](up[3](up[2](up[1](x))))
        x = x + self.depth_mix(x)
        weights = self.output_hypernetwork(tokens[:, 1])
        logit = torch.einsum("bc,bcdhw->bdhw", weights, x)[:, None]
        logits = logit + self.image_fuse(torch.cat([logit, image.to(x.dtype)], dim=1))
        presence = self.presence_head(tokens[:, 5])[:, 0]
        return DecoderOutput(logits, logits, presence)

