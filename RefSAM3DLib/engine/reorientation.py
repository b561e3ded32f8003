"""Exact, invertible reorientation of an (i, j, k) array to the closest RAS-aligned axes.

The model must see anatomy the same way every time ("left kidney" depends on it), whatever the
scanner's axis order. Permuting and flipping axes is lossless, so results map back to the user's
grid voxel for voxel. Oblique scans keep their small rotation; it is undone exactly on the way back.
"""
from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
import torch


@dataclass(frozen=True)
class AxisReorientation:
    perm: tuple[int, int, int]  # canonical axis c takes original axis perm[c]
    flip: tuple[bool, bool, bool]  # per canonical axis: reverse it after permuting
    original_shape: tuple[int, int, int]

    @classmethod
    def to_ras(cls, affine: np.ndarray, shape: tuple[int, int, int]) -> "AxisReorientation":
        ornt = nib.orientations.io_orientation(affine)  # per original axis: (RAS axis, direction)
        perm = [0, 0, 0]
        flip = [False, False, False]
        for original_axis, (ras_axis, direction) in enumerate(ornt):
            perm[int(ras_axis)] = original_axis
            flip[int(ras_axis)] = direction < 0
        return cls(tuple(perm), tuple(flip), tuple(int(s) for s in shape))

    @property
    def canonical_shape(self) -> tuple[int, int, int]:
        return tuple(self.original_shape[p] for p in self.perm)  # type: ignore[return-value]

    def forward(self, array):
        """Original (i, j, k) array (numpy or torch, extra leading dims allowed) -> canonical (R, A, S) axes."""
        lead = array.ndim - 3
        axes = tuple(range(lead)) + tuple(lead + p for p in self.perm)
        flips = [lead + a for a in range(3) if self.flip[a]]
        if isinstance(array, torch.Tensor):
            out = array.permute(axes)
            return out.flip(flips) if flips else out
        out = np.transpose(array, axes)
        return np.flip(out, flips) if flips else out

    def inverse(self, array):
        """Canonical array -> original (i, j, k) axes."""
        lead = array.ndim - 3
        flips = [lead + a for a in range(3) if self.flip[a]]
        inv = np.argsort(self.perm)
        axes = tuple(range(lead)) + tuple(lead + int(p) for p in inv)
        if isinstance(array, torch.Tensor):
            array = array.flip(flips) if flips else array
            return array.permute(axes)
        array = np.flip(array, flips) if flips else array
        return np.transpose(array, axes)

    def index_forward(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous original voxel indices (N, 3) -> canonical voxel indices (N, 3)."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        out = ijk[:, list(self.perm)].copy()
        for a in range(3):
            if self.flip[a]:
                out[:, a] = self.canonical_shape[a] - 1 - out[:, a]
        return out
