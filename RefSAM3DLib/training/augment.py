"""Intensity and field-of-view augmentation of a normalised crop (the paper's list, on MONAI transforms).

Paper: rotation, flipping, erasing, shearing, scaling, translation, posterization, contrast,
brightness and sharpness. Geometric ones live in crops.py (no flips: they swap left and right);
the rest are here, plus two that matter for clinical inputs: Gaussian noise / smoothing for other
scanners and reconstruction kernels, and slab truncation for scans that cover only part of the
body (the model must not assume a whole abdomen is in view).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from monai import transforms as mt


@dataclass
class AugmentConfig:
    noise: float = 0.15
    gamma: float = 0.3  # contrast
    brightness: float = 0.3  # scale + shift
    smooth: float = 0.15
    sharpen: float = 0.1  # sharpness
    histogram: float = 0.1
    posterize: float = 0.05
    erase: float = 0.15
    slab: float = 0.2  # keep only a slab of slices (partial field of view)
    contrast_phase: float = 0.6  # CT only, see contrast_phase.py


class IntensityAugmenter:
    """Random intensity transforms for a (1, D, H, W) image in [-1, 1]; MONAI transforms seeded per call."""

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg
        self.chain = [
            mt.RandGaussianNoise(prob=cfg.noise, mean=0.0, std=0.05),
            mt.RandAdjustContrast(prob=cfg.gamma, gamma=(0.7, 1.5)),
            mt.RandScaleIntensity(prob=cfg.brightness, factors=0.15),
            mt.RandShiftIntensity(prob=cfg.brightness, offsets=0.1),
            mt.RandGaussianSmooth(prob=cfg.smooth, sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0), sigma_z=(0.3, 1.0)),
            mt.RandGaussianSharpen(prob=cfg.sharpen, sigma1_x=(0.3, 0.8), sigma1_y=(0.3, 0.8), sigma1_z=(0.3, 0.8),
                                   sigma2_x=0.3, sigma2_y=0.3, sigma2_z=0.3, alpha=(2.0, 10.0)),
            mt.RandHistogramShift(prob=cfg.histogram, num_control_points=(5, 10)),
            mt.RandCoarseDropout(holes=1, max_holes=4, spatial_size=6, max_spatial_size=16, fill_value=0.0,
                                 prob=cfg.erase),
        ]

    def __call__(self, image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        x = image
        for t in self.chain:
            t.set_random_state(seed=int(rng.integers(2**31 - 1)))
            x = t(x)
        x = torch.as_tensor(x).float()
        if rng.random() < self.cfg.posterize:
            levels = int(rng.integers(8, 33))
            x = torch.round((x + 1) / 2 * (levels - 1)) / (levels - 1) * 2 - 1
        return x.clamp(-1.5, 1.5)


def truncate_to_slab(image: torch.Tensor, label: torch.Tensor, rng: np.random.Generator,
                     min_slices: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Blank everything outside a random run of slices (axis D) as if the scan ended there."""
    depth = image.shape[-3]
    length = int(rng.integers(min(min_slices, depth), depth + 1))
    start = int(rng.integers(0, depth - length + 1))
    image, label = image.clone(), label.clone()
    image[..., :start, :, :] = -1.0
    image[..., start + length:, :, :] = -1.0
    label[..., :start, :, :] = 0
    label[..., start + length:, :, :] = 0
    return image, label
