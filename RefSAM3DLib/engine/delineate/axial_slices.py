"""A volume seen as the axial slices a radiologist scrolls through, at their native resolution.

The pretrained decoder was trained on axial slices as DICOM stores them (rows anterior -> posterior, columns
patient right -> left, seen from the feet), so every volume is shown to it that way whatever the file's axis
order: the axes are permuted and flipped to the closest RAS-aligned ones (``AxisReorientation``, lossless; an
oblique scan keeps its small tilt) and each axial slice is a view of that array -- nothing is resampled across
slices, nothing is copied until a slice is read. Masks travel back to the user's grid voxel for voxel.

Indices here are (z, row, col): z increases superior, row posterior, col towards the patient's left.
"""
from __future__ import annotations

import numpy as np

from ...io.volume import Volume
from ..mask_bounds import mask_bounds
from ..reorientation import AxisReorientation


class AxialSlices:
    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self.reorientation = AxisReorientation.to_ras(volume.geometry.affine, volume.geometry.shape)
        canonical = self.reorientation.forward(volume.array)  # (R, A, S) view
        # (S, A reversed, R reversed) = (z, row, col): a view, no copy
        self._stack = np.transpose(canonical[::-1, ::-1, :], (2, 1, 0))
        spacing = np.asarray(volume.geometry.spacing, dtype=float)[list(self.reorientation.perm)]
        self.slice_mm = float(spacing[2])
        self.pixel_mm = (float(spacing[1]), float(spacing[0]))  # (row, col)

    @property
    def spacing_mm(self) -> np.ndarray:
        """Voxel size along (z, row, col)."""
        return np.asarray([self.slice_mm, *self.pixel_mm])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, cols)."""
        return tuple(int(s) for s in self._stack.shape)  # type: ignore[return-value]

    def slice(self, z: int) -> np.ndarray:
        """One axial slice (rows, cols) as float32 (a copy)."""
        return np.asarray(self._stack[int(z)], dtype=np.float32)

    def block(self, z0: int, z1: int, rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
        """Slices [z0, z1), optionally cropped in-plane, as float32 (a copy of the crop only)."""
        crop = (rows or slice(None), cols or slice(None))
        return np.asarray(self._stack[int(z0):int(z1)][(slice(None),) + crop], dtype=np.float32)

    # ------------------------------------------------------------------ coordinates
    def from_ijk(self, ijk: np.ndarray) -> np.ndarray:
        """Continuous voxel indices of the user's grid (N, 3) -> (z, row, col) (N, 3)."""
        canonical = self.reorientation.index_forward(ijk)
        r, a, s = canonical[:, 0], canonical[:, 1], canonical[:, 2]
        shape = self.reorientation.canonical_shape
        return np.stack([s, shape[1] - 1 - a, shape[0] - 1 - r], axis=1)

    def from_ras(self, ras: np.ndarray) -> np.ndarray:
        return self.from_ijk(self.volume.geometry.ras_to_ijk(ras))

    def to_ijk(self, zrc: np.ndarray) -> np.ndarray:
        """(z, row, col) (N, 3) -> voxel indices of the user's grid (N, 3)."""
        zrc = np.atleast_2d(np.asarray(zrc, dtype=float))
        shape = self.reorientation.canonical_shape
        canonical = np.stack([shape[0] - 1 - zrc[:, 2], shape[1] - 1 - zrc[:, 1], zrc[:, 0]], axis=1)
        out = np.empty_like(canonical)
        for c, original in enumerate(self.reorientation.perm):
            value = canonical[:, c]
            out[:, original] = (self.reorientation.original_shape[original] - 1 - value
                                if self.reorientation.flip[c] else value)
        return out

    def mask_to_volume(self, mask: np.ndarray) -> np.ndarray:
        """A (z, row, col) mask -> the user's (i, j, k) grid (zero outside the mask's bounding box, which alone
        is moved: a structure is a few percent of a clinical CT)."""
        return self._move_box(mask, self._to_user, self.to_ijk, tuple(self.volume.geometry.shape))

    def mask_from_volume(self, mask: np.ndarray) -> np.ndarray:
        """A mask on the user's (i, j, k) grid -> (z, row, col)."""
        return self._move_box(np.asarray(mask), self._from_user, self.from_ijk, self.shape)

    def _to_user(self, block: np.ndarray) -> np.ndarray:
        return self.reorientation.inverse(np.transpose(block, (2, 1, 0))[::-1, ::-1, :])

    def _from_user(self, block: np.ndarray) -> np.ndarray:
        return np.transpose(self.reorientation.forward(block)[::-1, ::-1, :], (2, 1, 0))

    @staticmethod
    def _move_box(mask: np.ndarray, move, corner_to, out_shape) -> np.ndarray:
        """Axis permutations and flips carry a box to a box: move the occupied block, place it where its
        corners land."""
        out = np.zeros(out_shape, dtype=mask.dtype)
        bounds = mask_bounds(mask)
        if bounds is None:
            return out
        lo, hi = bounds
        corners = np.round(corner_to(np.stack([lo, hi]).astype(float))).astype(int)
        start, stop = corners.min(0), corners.max(0) + 1
        out[tuple(slice(a, b) for a, b in zip(start, stop))] = move(
            mask[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1])
        return out
