"""TinyViT, the 2D image encoder of LiteMedSAM and MobileSAM, written for RefSAM3D's ``lite`` model.

Parameter names follow the published checkpoints (``image_encoder.*`` of ``lite_medsam.pth`` and
``mobile_sam.pt``) so their tensors load one to one. Unlike the reference builders this version is
resolution-generic: the attention biases belong to the local window (7 or 14 tokens a side), not to
the image, so the same weights run on a 128 x 128 slice as on the 256 x 256 one they were trained on.

Layout (LiteMedSAM): a pointwise stem keeps full resolution, stage 0 is two MBConv blocks, a patch
merge halves the grid before stages 1 and 2, stage 3 keeps the grid (stride-1 merge), and the SAM
neck maps 320 channels to a 256-channel embedding at 1/4 of the input size. MobileSAM differs only in
its stem (two stride-2 3x3 convolutions, so its embedding is at 1/16 of the input size).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import ChannelLayerNorm

LITE_MEDSAM = {"embed_dims": (64, 128, 160, 320), "depths": (2, 2, 6, 2), "num_heads": (2, 4, 5, 10),
               "window_sizes": (7, 7, 14, 7), "mlp_ratio": 4.0, "mbconv_expand": 4.0}


class ConvBN(nn.Sequential):
    """Convolution without bias followed by batch norm (names ``c`` and ``bn`` as in the checkpoints)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class Stem(nn.Module):
    """Image -> first-stage channels. pointwise: two 1x1 convs (LiteMedSAM); strided: two 3x3/2 (MobileSAM)."""

    def __init__(self, cin: int, dim: int, strided: bool) -> None:
        super().__init__()
        kernel, stride = (3, 2) if strided else (1, 1)
        self.seq = nn.Sequential(ConvBN(cin, dim // 2, kernel, stride), nn.GELU(), ConvBN(dim // 2, dim, kernel, stride))
        self.stride = stride * stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual: expand 1x1, depthwise 3x3, project 1x1, residual, GELU."""

    def __init__(self, dim: int, expand: float) -> None:
        super().__init__()
        hidden = int(dim * expand)
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv2(self.act(self.conv1(x))))
        return self.act(x + self.conv3(y))


class PatchMerging(nn.Module):
    """1x1 widen, depthwise 3x3 with stride (1 for the last merge of LiteMedSAM/MobileSAM), 1x1."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C', H', W')."""
        return self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))


class WindowAttention(nn.Module):
    """Multi-head attention inside a w x w window with a learned bias per head and per |dy|, |dx| offset."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(heads, window * window))
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        index = (ys[:, None] - ys[None]).abs() * window + (xs[:, None] - xs[None]).abs()
        self.register_buffer("bias_index", index, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, N, C) tokens of B windows -> (B, N, C)."""
        b, n, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.heads, 3, self.head_dim)  # per head: q | k | v
        q, k, v = qkv.permute(3, 0, 2, 1, 4)
        bias = self.attention_biases[:, self.bias_index].to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None], scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class TokenMLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Window attention (the grid zero-padded to whole windows), a depthwise 3x3 conv, an MLP."""

    def __init__(self, dim: int, heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window = window
        self.attn = WindowAttention(dim, heads, window)
        self.local_conv = ConvBN(dim, dim, 3, groups=dim)
        self.mlp = TokenMLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        s = self.window
        ph, pw = (-h) % s, (-w) % s
        t = F.pad(x.permute(0, 2, 3, 1), (0, 0, 0, pw, 0, ph))  # padded tokens take part, as in training
        nh, nw = (h + ph) // s, (w + pw) // s
        t = t.reshape(b, nh, s, nw, s, c).transpose(2, 3).reshape(b * nh * nw, s * s, c)
        t = self.attn(t).reshape(b, nh, nw, s, s, c).transpose(2, 3).reshape(b, nh * s, nw * s, c)
        x = x + t[:, :h, :w].permute(0, 3, 1, 2)
        x = self.local_conv(x)
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.mlp(tokens)
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class Stage(nn.Module):
    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (output of the blocks, input of the next stage)."""
        for block in self.blocks:
            x = block(x)
        return x, (self.downsample(x) if self.downsample is not None else x)


@dataclass
class TinyViTFeatures:
    """Per-slice outputs that RefSAM3D lifts to 3D: the merged stage-0 map (1/2 of the slice), the
    stage-1 and stage-2 outputs (1/4) and the 256-channel SAM embedding (1/4, after stage 3 and the neck)."""

    stage0: torch.Tensor  # (B, 128, H/2, W/2)
    stage1: torch.Tensor  # (B, 160, H/4, W/4)
    stage2: torch.Tensor  # (B, 320, H/4, W/4)
    embedding: torch.Tensor  # (B, 256, H/4, W/4)

    def as_list(self) -> list[torch.Tensor]:
        return [self.stage0, self.stage1, self.stage2, self.embedding]


class TinyViT(nn.Module):
    def __init__(self, in_chans: int = 1, strided_stem: bool = False, embed_dims=LITE_MEDSAM["embed_dims"],
                 depths=LITE_MEDSAM["depths"], num_heads=LITE_MEDSAM["num_heads"],
                 window_sizes=LITE_MEDSAM["window_sizes"], mlp_ratio: float = 4.0, mbconv_expand: float = 4.0,
                 out_dim: int = 256) -> None:
        super().__init__()
        self.embed_dims = tuple(embed_dims)
        self.patch_embed = Stem(in_chans, embed_dims[0], strided_stem)
        layers = []
        for i, (dim, depth) in enumerate(zip(embed_dims, depths)):
            if i == 0:
                blocks = [MBConv(dim, mbconv_expand) for _ in range(depth)]
            else:
                blocks = [TinyViTBlock(dim, num_heads[i], window_sizes[i], mlp_ratio) for _ in range(depth)]
            last = i == len(embed_dims) - 1
            stride = 1 if i == len(embed_dims) - 2 else 2  # the merge before the last stage keeps the grid
            down = None if last else PatchMerging(dim, embed_dims[i + 1], stride)
            layers.append(Stage(blocks, down))
        self.layers = nn.ModuleList(layers)
        self.neck = nn.Sequential(nn.Conv2d(embed_dims[-1], out_dim, 1, bias=False), ChannelLayerNorm(out_dim),
                                  nn.Conv2d(out_dim, out_dim, 3, padding=1, bias=False), ChannelLayerNorm(out_dim))

    @property
    def input_multiple(self) -> int:
        """Slice sizes must be multiples of this (two stride-2 merges, plus the stem's stride)."""
        return 4 * self.patch_embed.stride

    def forward(self, x: torch.Tensor) -> TinyViTFeatures:
        """x (B, C, H, W) in [0, 1] -> the four feature maps of ``TinyViTFeatures``."""
        if x.shape[-1] % self.input_multiple or x.shape[-2] % self.input_multiple:
            raise ValueError(f"TinyViT input {tuple(x.shape[-2:])} must be a multiple of {self.input_multiple}")
        x = self.patch_embed(x)
        maps = []
        for layer in self.layers[:3]:
            _, x = layer(x)  # the merged output: the next stage's input
            maps.append(x)
        out, _ = self.layers[3](x)
        return TinyViTFeatures(maps[0], maps[1], maps[2], self.neck(out))
