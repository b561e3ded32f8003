"""Training crops: choose a structure, a centre (foreground : background = 1 : 1) and a random
scale / rotation / shear, and resample image and labels into one model window in a single step.

One ``grid_sample`` per crop does crop + scale + rotation + shear + translation together (one
interpolation, exact control of the centre), on the cached model-grid volume. Scale changes the
apparent voxel size, which trains the model for scanners whose resolution differs from the model
spacing. Left-right flips are never used: they would turn a left kidney into a right one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .case_cache import PreparedCase


@dataclass
class CropConfig:
    window: tuple[int, int, int]
    foreground_ratio: float = 0.5  # the paper samples foreground : background patches 1 : 1
    scale_range: tuple[float, float] = (0.75, 1.4)  # crop extent / window extent
    anisotropy: float = 0.1  # per-axis scale jitter
    max_rotation_deg: float = 12.0
    max_shear: float = 0.05
    pad_value_ct: float = -1024.0


@dataclass
class Crop:
    image: torch.Tensor  # (D, H, W) raw intensities (HU for CT)
    label: torch.Tensor  # (D, H, W) int64 label values of the case
    case: PreparedCase
    focus_value: int  # the structure the crop was centred on (0 = background crop)


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    out = np.eye(3)
    for axis in range(3):
        angle = math.radians(rng.uniform(-max_deg, max_deg)) * (1.0 if axis == 0 else 0.5)
        c, s = math.cos(angle), math.sin(angle)
        a, b = [i for i in range(3) if i != axis]
        r = np.eye(3)
        r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
        out = out @ r
    return out


@lru_cache(maxsize=4)
def _offsets(window: tuple[int, int, int]) -> torch.Tensor:
    """(D, H, W, 3) voxel offsets of a window's voxels from its centre."""
    axes = [torch.arange(w, dtype=torch.float32) - (w - 1) / 2 for w in window]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def sample_crop(case: PreparedCase, value: int, rng: np.random.Generator, cfg: CropConfig,
                augment: bool = True) -> Crop:
    """One crop of ``case``; centred on structure ``value`` with probability ``foreground_ratio``."""
    shape = np.asarray(case.image.shape)
    window = np.asarray(cfg.window, dtype=np.float64)
    if value and rng.random() < cfg.foreground_ratio:
        voxels = np.argwhere(case.label == value)
        centre = voxels[rng.integers(len(voxels))] + rng.uniform(-0.25, 0.25, 3) * window
        focus = value
    else:
        centre = rng.uniform(0, shape - 1)
        focus = 0
    matrix = np.eye(3)
    if augment:
        scale = math.exp(rng.uniform(math.log(cfg.scale_range[0]), math.log(cfg.scale_range[1])))
        scales = scale * np.exp(rng.uniform(-cfg.anisotropy, cfg.anisotropy, 3))
        shear = np.eye(3) + rng.uniform(-cfg.max_shear, cfg.max_shear, (3, 3)) * (1 - np.eye(3))
        matrix = _rotation(rng, cfg.max_rotation_deg) @ shear @ np.diag(scales)
    # model-grid voxel of every crop voxel: centre + M @ (offset from the crop centre)
    coords = _offsets(tuple(int(w) for w in window)) @ torch.from_numpy(matrix.T).float() + \
        torch.from_numpy(centre).float()
    # grid_sample wants (x, y, z) = (w, h, d) in [-1, 1] with align_corners=True
    norm = coords / torch.from_numpy(np.maximum(shape - 1, 1)).float() * 2 - 1
    norm = norm.flip(-1)[None]
    pad = cfg.pad_value_ct if case.modality == "CT" else float(case.image.min())
    image = torch.from_numpy(case.image)[None, None] - pad
    image = F.grid_sample(image, norm, mode="bilinear", padding_mode="zeros", align_corners=True)[0, 0] + pad
    label = torch.from_numpy(case.label.astype(np.int64))[None, None].float()
    label = F.grid_sample(label, norm, mode="nearest", padding_mode="zeros", align_corners=True)[0, 0].long()
    return Crop(image, label, case, focus)
