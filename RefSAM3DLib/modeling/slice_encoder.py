"""The frozen 2D half of the ``lite`` image encoder: every axial slice through pretrained TinyViT, once.

Why frozen and outside the 3D path: on the CPUs this project trains on, TinyViT costs about a second
per slice forward and several times that backward, so adapters inside its blocks (MA-SAM's design)
would need a backward pass through it at every training step. Keeping it frozen lets a session encode
each slice once and reuse the features for every prompt and click, and lets training cache the
features of every case; the 3D context, the text and the decoder act on its stage outputs instead
(``lift3d.py``). The network always runs in eval mode (batch-norm statistics are part of the weights).

Input: model-space windows normalised to [-1, 1] (the engine's convention); TinyViT expects [0, 1]
grey images replicated over RGB, so the RGB kernel of its first convolution is summed at load time and
the slice is rescaled here.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import Cancelled
from .tiny_vit import TinyViT, TinyViTFeatures


class SliceEncoder(nn.Module):
    def __init__(self, strided_stem: bool = False) -> None:
        super().__init__()
        # channels-last convolutions: 0.29 vs 0.34 s per 128 x 128 slice on 2 CPU cores, identical outputs
        self.net = TinyViT(in_chans=1, strided_stem=strided_stem).to(memory_format=torch.channels_last)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> "SliceEncoder":
        super().train(mode)
        self.net.eval()  # frozen: batch norm keeps its pretrained statistics
        return self

    @property
    def channels(self) -> tuple[int, int, int, int]:
        dims = self.net.embed_dims
        return dims[1], dims[2], dims[3], 256

    @torch.no_grad()
    def forward(self, slices: torch.Tensor) -> list[torch.Tensor]:
        """slices (N, 1, H, W) in [-1, 1] -> [stage0, stage1, stage2, embedding] maps of every slice."""
        features: TinyViTFeatures = self.net(((slices + 1) * 0.5).contiguous(memory_format=torch.channels_last))
        return features.as_list()


def encode_volume_slices(encoder: SliceEncoder, image: torch.Tensor, batch: int = 8, dtype=torch.float16,
                         progress=None, cancel=None) -> list[torch.Tensor]:
    """Encode every slice of (D, H, W) -> four (D, C, h, w) maps stored as ``dtype`` on the image's device.

    ``progress(done, total)`` is called after each batch; ``cancel()`` returning True stops between batches.
    """
    depth = image.shape[0]
    out: list[torch.Tensor] | None = None
    for z0 in range(0, depth, batch):
        if cancel is not None and cancel():
            raise Cancelled("cancelled by the user; nothing was changed")
        maps = encoder(image[z0:z0 + batch, None].float())
        if out is None:
            out = [torch.empty((depth,) + tuple(m.shape[1:]), dtype=dtype, device=m.device) for m in maps]
        for target, m in zip(out, maps):
            target[z0:z0 + len(m)] = m.to(dtype)
        if progress is not None:
            progress(min(depth, z0 + batch), depth)
    return out or []
