"""The encoder side of a session: image-window embeddings, each computed at most once.

Windows are keyed by their start on the padded model grid. For the ViT model a window's four stage
maps come straight from the image encoder; for the lite model the frozen 2D encoder runs per slice
(``SliceFeatureStore``, each slice once) and only the cheap 3D lift runs per window. Batches go
through the predictor (device precision, out-of-memory fallback), and the cache follows the model
to the CPU if it had to move there.
"""
from __future__ import annotations

import torch

from .profiling import stage
from .progress import check_cancel, report
from .slice_cache import SliceFeatureStore
from .sliding_window import Start, window_slices


class WindowCache:
    def __init__(self, predictor, image: torch.Tensor) -> None:
        self.predictor = predictor
        self.image = image
        self.window = tuple(predictor.model.config.window_size)
        self.lite = predictor.model.config.is_lite
        self.slices = (SliceFeatureStore(predictor.model, image, stride=predictor.slice_stride) if self.lite
                       else None)
        self._stages: dict[Start, list[torch.Tensor]] = {}
        self.encoded_windows = 0  # how many windows went through the encoder (tests count this)

    def __contains__(self, start: Start) -> bool:
        return start in self._stages

    def stages(self, start: Start) -> list[torch.Tensor]:
        return self._stages[start]

    def window_image(self, start: Start) -> torch.Tensor:
        return self.image[window_slices(start, self.window)]

    def encode(self, starts: list[Start], progress=None, cancel=None, done: int = 0,
               total: int | None = None) -> None:
        """Encode the windows that are not cached yet (lite: their slices first, each at most once)."""
        missing = [s for s in dict.fromkeys(starts) if s not in self._stages]
        total = total or len(missing)
        if self.slices is not None and missing:
            self._encode_slices(missing, progress, cancel)

        def run(model, batch):
            with stage("encode"):
                if self.slices is not None:
                    maps = [self.slices.window(s[0], s[0] + self.window[0]) for s in batch]
                    return model.lift_slices([torch.cat([m[k] for m in maps]) for k in range(4)])
                x = torch.stack([self.window_image(s) for s in batch])[:, None]
                return model.encode_image(x)

        for batch, stages in self.predictor.map_batches(missing, "encode", run, lambda: self.sync(cancel)):
            for i, s in enumerate(batch):
                self._stages[s] = [st[i].detach() for st in stages]
            self.encoded_windows += len(batch)
            done += len(batch)
            report(progress, done, total, "encoding image windows")

    def _encode_slices(self, starts: list[Start], progress, cancel) -> None:
        needed = [z for s in starts for z in range(s[0], s[0] + self.window[0])]
        todo = len(self.slices.plan(needed)[0])  # what the encoder will run (every other slice by default)
        count = [0]

        def on_batch(n: int) -> None:
            count[0] += n
            report(progress, count[0], todo, "encoding slices")
            self.sync(cancel)

        self.sync(cancel)
        with torch.no_grad(), torch.autocast(self.predictor.device.type, dtype=torch.bfloat16,
                                             enabled=self.predictor.amp), stage("encode"):
            self.slices.ensure(needed, on_batch)

    def sync(self, cancel) -> None:
        """Between batches: honour cancel, and follow the model if it fell back to the CPU."""
        check_cancel(cancel)
        device = self.predictor.device
        if self.image.device != device:
            self.image = self.image.to(device)
            self._stages = {k: [t.to(device) for t in v] for k, v in self._stages.items()}
            if self.slices is not None:
                self.slices.to(device)

    def clear(self) -> None:
        self._stages.clear()
        if self.slices is not None:
            self.slices = SliceFeatureStore(self.predictor.model, self.image, stride=self.predictor.slice_stride)
