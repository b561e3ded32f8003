"""The training dataset: an epoch of reproducible random crops with their simulated prompts.

Item ``(epoch, i)`` always yields the same crop and prompts (its random generator is seeded by
``(seed, epoch, i)``), so a resumed run sees exactly the data an uninterrupted one would, and each
DDP rank gets its own share of indices from the sampler.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from ..engine.intensity import scale_to_unit
from ..modeling.config import RefSAM3DConfig
from .augment import AugmentConfig, IntensityAugmenter, truncate_to_slab
from .case_cache import PreparedCase
from .contrast_phase import simulate_contrast_phase
from .crops import CropConfig, sample_crop
from .prompt_simulation import PromptSample, simulate_prompts
from .vocabulary_bridge import StructureText, absent_groups, allowed, negatives_pool, structures_of

MUSCULOSKELETAL_WEIGHT = 1 / 3
_MUSCULOSKELETAL = ("vertebra", "rib", "hip", "femur", "humerus", "scapula", "clavicula", "sacrum", "gluteus",
                    "autochthon", "iliopsoas", "costal", "sternum", "skull", "intervertebral", "spinal_canal")


def is_musculoskeletal(raw_name: str) -> bool:
    name = raw_name.lower()
    return any(k in name for k in _MUSCULOSKELETAL)


@dataclass
class TrainingItem:
    image: torch.Tensor  # (1, D, H, W) normalised
    prompts: list[PromptSample]
    case_id: str
    slice_maps: list[torch.Tensor] | None = None  # lite model: cached per-slice encoder maps [(D, C, h, w) x 4]


class CropDataset(Dataset):
    def __init__(self, cases: list[PreparedCase], config: RefSAM3DConfig, epoch_length: int, seed: int = 0,
                 augment: bool = True, num_prompts: int = 2, crop: CropConfig | None = None,
                 intensity: AugmentConfig | None = None, prompt_structures: list[str] | None = None) -> None:
        self.cases = [c for c in cases if c.names]
        if not self.cases:
            raise ValueError("no training case has a labelled structure")
        self.config = config
        self.epoch_length = epoch_length
        self.seed = seed
        self.augment = augment
        self.num_prompts = num_prompts
        self.crop = crop or CropConfig(window=tuple(config.window_size))
        self.intensity_cfg = intensity or AugmentConfig()
        self.intensity = IntensityAugmenter(self.intensity_cfg)
        self.texts = StructureText()
        self.structures = [structures_of(c.names, c.exhaustive) for c in self.cases]
        if prompt_structures is not None:
            self.structures = [{n: v for n, v in st.items() if allowed(n, prompt_structures)} for st in self.structures]
        self.pools = [negatives_pool(list(st), c.absent_names + absent_groups(c, st), c.regions)
                      for c, st in zip(self.cases, self.structures)]
        # within a case, structures are drawn by sqrt(volume), and bones and muscles (a third of the labels of a
        # TotalSegmentator map) at a third of that: organs, vessels and lesions are what people ask for most,
        # a single rib still comes up regularly
        self.structure_weights, self.all_values = [], []
        for c, st in zip(self.cases, self.structures):
            every = np.asarray(sorted(c.names))
            self.all_values.append((every, np.full(len(every), 1.0 / len(every))))
            values = np.asarray(sorted({v for vals in st.values() for v in vals}), dtype=np.int64)
            counts = np.asarray([np.sqrt((c.label == v).sum()) * (MUSCULOSKELETAL_WEIGHT if is_musculoskeletal(
                c.names[int(v)]) else 1.0) for v in values], dtype=np.float64)
            self.structure_weights.append((values, counts / counts.sum() if len(values) else counts))
        sizes = np.asarray([math.sqrt(max(1, len(st))) for st in self.structures])
        self.case_weights = sizes / sizes.sum()  # many-structure cases more often, every case regularly

    def __len__(self) -> int:
        return self.epoch_length

    def all_phrases(self) -> list[str]:
        """Every text the simulator can produce (for the precomputed text bank)."""
        out = []
        for case, structures, pool in zip(self.cases, self.structures, self.pools):
            for name in list(structures) + pool:
                out += self.texts.phrases(name, case.modality)
        return list(dict.fromkeys(out))

    def draw(self, key) -> tuple[np.random.Generator, int, PreparedCase, int]:
        """Item ``(epoch, i)``'s generator (seeded by both), case index, case and structure value to centre on."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, epoch, index])
        k = int(rng.choice(len(self.cases), p=self.case_weights))
        values, weights = self.structure_weights[k]
        if not len(values):
            values, weights = self.all_values[k]
        return rng, k, self.cases[k], int(values[int(rng.choice(len(values), p=weights))])

    def __getitem__(self, key) -> TrainingItem:
        rng, k, case, value = self.draw(key)
        crop = sample_crop(case, value, rng, self.crop, augment=self.augment)
        image, label = crop.image, crop.label
        if case.modality == "CT":
            if self.augment and rng.random() < self.intensity_cfg.contrast_phase:
                image = simulate_contrast_phase(image, label, case.names, rng)
            image = scale_to_unit(image, *self.config.ct_window_hu)
        else:
            image = scale_to_unit(image, *case.intensity_range)
        image = image[None]
        if self.augment:
            if rng.random() < self.intensity_cfg.slab:
                image, label = truncate_to_slab(image, label[None], rng)
                label = label[0]
            image = self.intensity(image, rng)
        prompts = simulate_prompts(label, self.structures[k], crop.focus_value, case.modality, self.pools[k],
                                   self.texts, rng, self.num_prompts, max_positives=max(1, self.num_prompts - 1))
        return TrainingItem(image.float(), prompts, case.id)


class EpochSampler(DistributedSampler):
    """DistributedSampler that yields (epoch, index), so the dataset can seed each item by both."""

    def __iter__(self):
        for i in super().__iter__():
            yield (self.epoch, i)


def collate(items: list[TrainingItem]) -> list[TrainingItem]:
    return items
