"""Per-slice encoder features of one session's volume, computed on demand and kept (the lite model).

The lite model's 2D encoder is the expensive, frozen part; its output for an axial slice does not
depend on the prompt or on the window the slice falls in. So each slice is encoded at most once per
session: a text prompt over the volume encodes every slice, a first click encodes only the slices of
its window, and overlapping windows share their slices. Maps are stored in float16 on the session's
device (about 2.5 MB per 128 x 128 slice).
"""
from __future__ import annotations

import torch


class SliceFeatureStore:
    def __init__(self, model, image: torch.Tensor, batch: int = 8, stride: int = 1) -> None:
        self.model = model
        self.image = image  # (D, H, W) normalised, padded model grid
        self.batch = batch
        self.stride = stride  # 2: odd slices get the mean of their neighbours' maps instead of an encoding
        self.maps: list[torch.Tensor] | None = None
        self.done = torch.zeros(image.shape[0], dtype=torch.bool)  # maps available (encoded or interpolated)
        self.encoded = torch.zeros(image.shape[0], dtype=torch.bool)
        self.encoded_slices = 0

    def plan(self, slices: list[int]) -> tuple[list[int], list[int]]:
        """-> (slices to run through the encoder, slices to fill from their two neighbours) for ``slices``."""
        wanted = [z for z in dict.fromkeys(slices) if not self.done[z]]
        depth = self.image.shape[0]
        between = [z for z in wanted if self.stride == 2 and z % 2 == 1 and z + 1 < depth]
        skipped = set(between)
        anchors = [z for z in wanted if z not in skipped] + [n for z in between for n in (z - 1, z + 1)]
        return [z for z in sorted(set(anchors)) if not self.encoded[z]], between

    def ensure(self, slices: list[int], on_batch=None) -> None:
        """Make the maps of ``slices`` available; ``on_batch(n)`` after each encoder batch (may raise Cancelled)."""
        todo, between = self.plan(slices)
        for i in range(0, len(todo), self.batch):
            part = todo[i:i + self.batch]
            index = torch.tensor(part, device=self.image.device)
            out = self.model.encode_slices(self.image.index_select(0, index)[:, None].float())
            if self.maps is None:
                depth = self.image.shape[0]
                self.maps = [torch.zeros((depth,) + tuple(m.shape[1:]), dtype=torch.float16, device=m.device)
                             for m in out]
            for store, m in zip(self.maps, out):
                store[index.to(store.device)] = m.to(torch.float16)
            self.done[part] = True
            self.encoded[part] = True
            self.encoded_slices += len(part)
            if on_batch is not None:
                on_batch(len(part))
        for z in between:
            for store in self.maps:
                store[z] = ((store[z - 1].float() + store[z + 1].float()) * 0.5).to(store.dtype)
            self.done[z] = True

    def window(self, z0: int, z1: int) -> list[torch.Tensor]:
        """Stored maps of slices [z0, z1) as a batch of one window [(1, D, C, h, w) x 4]."""
        if self.maps is None or not bool(self.done[z0:z1].all()):
            raise RuntimeError(f"slices {z0}..{z1 - 1} are not encoded yet")
        return [m[z0:z1][None] for m in self.maps]

    def to(self, device) -> None:
        self.image = self.image.to(device)
        if self.maps is not None:
            self.maps = [m.to(device) for m in self.maps]
