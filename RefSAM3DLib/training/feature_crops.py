"""Training items for the ``lite`` model: slabs of cached slice features with their simulated prompts.

A crop is a slab of ``window[0]`` consecutive slices of one encoded variant of a case (the window covers
the whole slice in-plane). The structure and the foreground : background ratio are drawn exactly as for
3D crops (``dataset.CropDataset``), and item ``(epoch, i)`` is again a pure function of the seed, so
resumed runs see the same data. The item carries the cached per-slice maps; the objective lifts them.
"""
from __future__ import annotations

import numpy as np
import torch

from ..modeling.config import RefSAM3DConfig
from .case_cache import PreparedCase
from .dataset import CropDataset, TrainingItem
from .prompt_simulation import simulate_prompts
from .slice_features import SliceFeatureSet


class SliceFeatureDataset(CropDataset):
    def __init__(self, cases: list[PreparedCase], features: dict[str, list[SliceFeatureSet]],
                 config: RefSAM3DConfig, epoch_length: int, seed: int = 0, num_prompts: int = 2,
                 prompt_structures: list[str] | None = None, foreground_ratio: float = 0.6) -> None:
        super().__init__(cases, config, epoch_length, seed, augment=False, num_prompts=num_prompts,
                         prompt_structures=prompt_structures)
        missing = [c.id for c in self.cases if not features.get(c.id)]
        if missing:
            raise ValueError(f"no encoded slice features for cases {missing}")
        self.features = [features[c.id] for c in self.cases]
        self.foreground_ratio = foreground_ratio

    def __getitem__(self, key) -> TrainingItem:
        rng, k, case, value = self.draw(key)
        variants = self.features[k]
        fs = variants[int(rng.integers(len(variants)))]
        depth = fs.label.shape[0]
        window = int(self.config.window_size[0])
        focus = 0
        z0 = int(rng.integers(0, depth - window + 1))
        if value and rng.random() < self.foreground_ratio:
            zs = np.flatnonzero((case.label == value).any(axis=(1, 2)))
            if len(zs):
                centre = int(zs[int(rng.integers(len(zs)))])
                z0 = int(np.clip(centre - int(rng.integers(0, window)), 0, depth - window))
                focus = value
        sl = slice(z0, z0 + window)
        label = torch.from_numpy(np.asarray(fs.label[sl], dtype=np.int64))
        image = torch.from_numpy(np.asarray(fs.image[sl], dtype=np.float32))[None]
        maps = [torch.from_numpy(np.array(m[sl])) for m in fs.maps]  # a copy: the cache is read-only
        prompts = simulate_prompts(label, self.structures[k], focus, case.modality, self.pools[k], self.texts, rng,
                                   self.num_prompts, max_positives=max(1, self.num_prompts - 1))
        return TrainingItem(image, prompts, case.id, slice_maps=maps)
