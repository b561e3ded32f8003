"""Intensity normalisation by modality: a fixed HU window for CT, robust percentiles for MR.

CT numbers are calibrated (air -1000, water 0), so one window serves every scanner; MR intensities
are arbitrary, so they are scaled by the volume's own percentiles. Both land in [-1, 1].
"""
from __future__ import annotations

import numpy as np
import torch


def detect_modality(array: np.ndarray) -> str:
    """'CT' when the volume holds calibrated air (many voxels far below -500), else 'MR'."""
    array = np.asarray(array)
    # every n-th voxel in C order, gathered in place: ravel() would first copy a whole transposed reader array
    flat = np.arange(0, array.size, max(1, array.size // 2_000_000))
    sample = array[np.unravel_index(flat, array.shape)].astype(np.float32)
    low = np.percentile(sample, 1)
    return "CT" if low < -500 and (sample < -500).mean() > 0.01 else "MR"


def normalize_ct(image: torch.Tensor, window_hu: tuple[float, float]) -> torch.Tensor:
    return scale_to_unit(image, *window_hu)


def mr_range(image: torch.Tensor, percentiles: tuple[float, float]) -> tuple[float, float]:
    """Robust intensity range of an MR volume: percentiles of the voxels above the background minimum."""
    flat = image.flatten()
    flat = flat[:: max(1, flat.numel() // 4_000_000)].float()
    foreground = flat[flat > flat.min()]
    if foreground.numel() < 16:
        foreground = flat
    q = torch.tensor([percentiles[0] / 100, percentiles[1] / 100], device=flat.device)
    lo, hi = torch.quantile(foreground, q)
    return float(lo), float(hi)


def scale_to_unit(image: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Clamp to [lo, hi] and map linearly to [-1, 1]."""
    return (image.clamp(lo, hi) - lo) / max(hi - lo, 1e-6) * 2 - 1


def normalize_mr(image: torch.Tensor, percentiles: tuple[float, float]) -> torch.Tensor:
    return scale_to_unit(image, *mr_range(image, percentiles))


def normalize(image: torch.Tensor, modality: str, window_hu: tuple[float, float],
              percentiles: tuple[float, float]) -> torch.Tensor:
    modality = modality.upper()
    if modality == "CT":
        return normalize_ct(image, window_hu)
    if modality in ("MR", "MRI"):
        return normalize_mr(image, percentiles)
    raise ValueError(f"unknown modality {modality!r}; use CT or MR")
