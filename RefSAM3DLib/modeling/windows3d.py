"""Partition a 3D token grid into cubic attention windows, optionally shifted (Swin-style).

SAM attends inside 14x14 windows on most blocks. In 3D the same idea keeps memory linear in the
number of tokens; shifting every other windowed block lets information cross window borders.
Regions that the cyclic shift brings together but that are not neighbours are masked out.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_windows(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Zero-pad (B, D, H, W, C) so every spatial size is a multiple of ``window``."""
    _, d, h, w, _ = x.shape
    pd, ph, pw = (-d) % window, (-h) % window, (-w) % window
    if pd or ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph, 0, pd))
    return x, (d + pd, h + ph, w + pw)


def partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, D, H, W, C) with sizes divisible by ``window`` -> (B * nWindows, window, window, window, C)."""
    b, d, h, w, c = x.shape
    x = x.reshape(b, d // window, window, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, window, window, window, c)


def merge(windows: torch.Tensor, window: int, grid: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of :func:`partition` for a padded grid ``grid``."""
    d, h, w = grid
    c = windows.shape[-1]
    x = windows.reshape(-1, d // window, h // window, w // window, window, window, window, c)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(-1, d, h, w, c)


def shift_mask(grid: tuple[int, int, int], window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Additive mask (nWindows, N, N): -inf-like between tokens from different pre-shift regions."""
    region = torch.zeros(grid, device=device)
    label = 0
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for sd in bounds:
        for sh in bounds:
            for sw in bounds:
                region[sd, sh, sw] = label
                label += 1
    ids = partition(region[None, ..., None], window).reshape(-1, window ** 3)
    different = ids[:, :, None] != ids[:, None, :]
    return different.float() * -1e4
