"""Image embeddings of the slices a prompt visits, computed on first use and kept for the session.

The encoder is the expensive part (0.5 s per 256 px slice on two CPU cores in bfloat16, 1 s in float32; ``amp``
runs it under bfloat16 autocast, chosen by ``predictor.native_bf16``); the decoder is cheaper (~0.1 s).
So nothing is encoded ahead: a box on a kidney encodes the slices its propagation reaches, a second prompt or
a corrective click on the same slices encodes none, and a whole CT is never encoded for one small structure.
Entries are keyed by (slice, view, intensity window), stored as float16 (2 MB each), and the least recently
used go first when the store passes its memory budget.
"""
from __future__ import annotations

from collections import OrderedDict

import torch

from .axial_slices import AxialSlices
from .slice_intensity import IntensityWindow
from .slice_view import View

DEFAULT_BUDGET_BYTES = 1536 * 2**20  # ~750 slices of a 512 x 512 CT


class SliceEmbeddings:
    def __init__(self, net, slices: AxialSlices, device: torch.device, budget_bytes: int = DEFAULT_BUDGET_BYTES,
                 amp: bool = False) -> None:
        self.net = net
        self.slices = slices
        self.device = device
        self.amp = amp
        self.budget_bytes = budget_bytes
        self._store: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.encoded = 0  # encoder runs (tests and benchmarks count them)
        self.on_encode = None  # called with the number of slices after each encoder run (progress / cancel)

    @staticmethod
    def key(z: int, view: View, window: IntensityWindow) -> tuple:
        return (int(z), view.key, window.name, window.lo, window.hi)

    def __contains__(self, item: tuple[int, View, IntensityWindow]) -> bool:
        return self.key(*item) in self._store

    def __len__(self) -> int:
        return len(self._store)

    def get(self, z: int, view: View, window: IntensityWindow) -> torch.Tensor:
        """(1, 256, 64, 64) embedding of slice ``z`` seen through ``view`` and ``window``."""
        key = self.key(z, view, window)
        found = self._store.get(key)
        if found is not None:
            self._store.move_to_end(key)
            return found.to(self.device, torch.float32)
        image = view.render(window.apply(self.slices.slice(z)))[None].to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            embedding = self.net.embed(image).to(torch.float16)
        self.encoded += 1
        self._store[key] = embedding
        self._trim()
        if self.on_encode is not None:
            self.on_encode(1)
        return embedding.float()  # the stored precision, so a later prompt sees exactly what this one saw

    def _trim(self) -> None:
        per_entry = next(iter(self._store.values())).numel() * 2 if self._store else 0
        while self._store and len(self._store) * per_entry > self.budget_bytes:
            self._store.popitem(last=False)

    def clear(self) -> None:
        self._store.clear()
