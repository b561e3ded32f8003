"""Window placement and blending on the model grid.

Whole-volume prompts tile the volume with overlapping windows and blend them with a Gaussian
weight (centre voxels trusted most), so window borders leave no seams. Click prompts get a window
centred on the click, snapped to a coarse grid so nearby clicks reuse one cached embedding, and are
blended in with a flat-top weight that lets the refined window win everywhere but its rim.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

Start = tuple[int, int, int]


def axis_starts(size: int, window: int, overlap: float) -> list[int]:
    if size <= window:
        return [0]
    stride = max(1, int(round(window * (1.0 - overlap))))
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def grid_windows(shape: tuple[int, int, int], window: tuple[int, int, int], overlap: float) -> list[Start]:
    axes = [axis_starts(s, w, overlap) for s, w in zip(shape, window)]
    return [tuple(p) for p in itertools.product(*axes)]  # type: ignore[misc]


def focus_window(center: np.ndarray, shape: tuple[int, int, int], window: tuple[int, int, int],
                 snap: int) -> Start:
    """Window start that puts ``center`` (d, h, w) near the middle, snapped to multiples of ``snap``
    (smaller along axes where the window is short, so the centre always stays inside the window)."""
    start = []
    for c, size, w in zip(center, shape, window):
        step = max(1, min(snap, w // 4))
        s = int(round((float(c) - w / 2) / step)) * step
        start.append(int(min(max(s, 0), max(size - w, 0))))
    return tuple(start)  # type: ignore[return-value]


def gaussian_weight(window: tuple[int, int, int], sigma_scale: float = 0.125, device=None) -> torch.Tensor:
    axes = []
    for w in window:
        x = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2
        axes.append(torch.exp(-0.5 * (x / (sigma_scale * w)) ** 2))
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    weight = weight / weight.max()
    return weight.clamp(min=1e-3)


def flat_top_weight(window: tuple[int, int, int], rim_fraction: float = 0.125, device=None) -> torch.Tensor:
    """1 in the window's interior, ramping linearly to ~0 over the outer ``rim_fraction`` on each side."""
    axes = []
    for w in window:
        rim = max(1.0, rim_fraction * w)
        x = torch.arange(w, device=device, dtype=torch.float32)
        dist = torch.minimum(x + 0.5, w - x - 0.5)
        axes.append((dist / rim).clamp(max=1.0))
    return axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]


def window_slices(start: Start, window: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    return tuple(slice(s, s + w) for s, w in zip(start, window))  # type: ignore[return-value]


def contains(start: Start, window: tuple[int, int, int], coords: np.ndarray) -> np.ndarray:
    """Which model-grid points (N, 3) fall inside the window (voxel centres, half-voxel tolerance)."""
    lo = np.asarray(start) - 0.5
    hi = np.asarray(start) + np.asarray(window) - 0.5
    return np.all((coords >= lo) & (coords < hi), axis=1)
