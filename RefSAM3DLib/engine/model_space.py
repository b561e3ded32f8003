"""The map between a user's volume (RAS mm, voxel grid of any orientation) and the model's grid.

Model space: axes (D, H, W) = (S, A, R) of the RAS-reoriented volume, resampled to the model's
spacing. Points go in (RAS mm -> model voxels), probabilities come out (model grid -> the exact
original grid, only inside the bounding box that matters).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..io.geometry import VolumeGeometry
from .profiling import stage
from .reorientation import AxisReorientation
from .resample import antialias, axis_matrix, resample_axes, resample_block, resample_nearest, source_range

# How images reach the model grid and results come back: "matrix" (in: one low-pass + interpolation matrix per axis,
# applied on the input's own memory layout; out: the mask's block written through a reoriented view of the output) or
# "separable" (the former paths: in, a contiguous reoriented copy, a Gaussian filter along every axis at full size, then
# interpolation; out, a model-order volume copied whole into the original axis order). Both compute the same maps;
# "separable" is kept as the reference that tests and benchmarks/bench_stages.py compare against.
RESAMPLER = "matrix"


@dataclass(frozen=True)
class ModelSpace:
    geometry: VolumeGeometry
    reorientation: AxisReorientation
    model_shape: tuple[int, int, int]  # (D, H, W)

    @classmethod
    def build(cls, geometry: VolumeGeometry, spacing_mm: tuple[float, float, float],
              fit_in_plane: int | None = None) -> "ModelSpace":
        """``fit_in_plane``: the largest in-plane size (voxels); the in-plane spacing grows (equally along H and W)
        where the field of view would not fit, so that one model window sees the whole axial slice."""
        reo = AxisReorientation.to_ras(geometry.affine, geometry.shape)
        canonical_spacing = geometry.spacing[list(reo.perm)]  # (R, A, S)
        dhw_extent = np.asarray(reo.canonical_shape[::-1]) * canonical_spacing[::-1]
        spacing = np.asarray(spacing_mm, dtype=np.float64)
        if fit_in_plane:
            in_plane = max(spacing[1], spacing[2], dhw_extent[1] / fit_in_plane, dhw_extent[2] / fit_in_plane)
            spacing[1:] = in_plane
        shape = np.maximum(1, np.round(dhw_extent / spacing)).astype(int)
        if fit_in_plane:
            shape[1:] = np.minimum(shape[1:], fit_in_plane)
        return cls(geometry, reo, tuple(int(s) for s in shape))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """The model grid's voxel size (D, H, W) in mm."""
        dhw = np.asarray(self.dhw_shape) * self.geometry.spacing[list(self.reorientation.perm)][::-1]
        return tuple(float(v) for v in dhw / np.asarray(self.model_shape))  # type: ignore[return-value]

    @property
    def dhw_shape(self) -> tuple[int, int, int]:
        """The reoriented original grid in model axis order (before resampling)."""
        return self.reorientation.canonical_shape[::-1]  # type: ignore[return-value]

    def _to_dhw(self, array):
        canonical = self.reorientation.forward(array)
        lead = canonical.ndim - 3
        order = tuple(range(lead)) + (lead + 2, lead + 1, lead)
        return canonical.permute(order) if isinstance(canonical, torch.Tensor) else np.transpose(canonical, order)

    def _from_dhw(self, array):
        lead = array.ndim - 3
        order = tuple(range(lead)) + (lead + 2, lead + 1, lead)
        canonical = array.permute(order) if isinstance(array, torch.Tensor) else np.transpose(array, order)
        return self.reorientation.inverse(canonical)

    # ------------------------------------------------------------------ images and masks in
    def to_model(self, volume: torch.Tensor) -> torch.Tensor:
        """Original (..., I, J, K) float tensor -> model grid (..., D, H, W), low-passed first along every axis
        that shrinks (see ``antialias``), so a thin-slice scan reaches the model with a coarse scan's noise."""
        if RESAMPLER == "separable":
            return self.to_model_separable(volume)
        reo = self.reorientation
        lead = volume.ndim - 3
        matrices: list[torch.Tensor | None] = [None, None, None]
        flips = []
        with stage("reorient"):  # no data moves: axis flips are folded into the matrices or done after resampling
            for c in range(3):  # canonical axis c = original axis perm[c] = model axis 2 - c
                n_in, n_out = reo.original_shape[reo.perm[c]], self.model_shape[2 - c]
                if n_in != n_out:
                    m = axis_matrix(n_in, n_out, device=volume.device)
                    matrices[reo.perm[c]] = m.flip(1) if reo.flip[c] else m
                elif reo.flip[c]:
                    flips.append(lead + reo.perm[c])
        with stage("resample"):
            out = resample_axes(volume, matrices)
        with stage("reorient"):
            if flips:
                out = out.flip(flips)
            dims = tuple(range(lead)) + tuple(lead + reo.perm[2 - a] for a in range(3))
            return out.permute(dims).contiguous()

    def to_model_separable(self, volume: torch.Tensor) -> torch.Tensor:
        """The reference for ``to_model``: reoriented contiguous copy, Gaussian filter along each shrinking axis at
        full size (``antialias``), then linear interpolation (``resample_block``). Same map, much slower."""
        with stage("reorient"):
            dhw = self._to_dhw(volume).contiguous()
        with stage("resample"):
            return resample_block(antialias(dhw, self.model_shape), self.model_shape)

    def labels_to_model(self, labels: torch.Tensor) -> torch.Tensor:
        """Original (I, J, K) integer label map -> model grid (D, H, W), nearest neighbour."""
        return resample_nearest(self._to_dhw(labels).contiguous(), self.model_shape)

    # ------------------------------------------------------------------ points in
    def ras_to_model(self, ras: np.ndarray) -> np.ndarray:
        """RAS mm (N, 3) -> continuous model voxel coordinates (N, 3) as (d, h, w)."""
        canonical = self.reorientation.index_forward(self.geometry.ras_to_ijk(ras))
        dhw = canonical[:, ::-1]
        scale = np.asarray(self.model_shape) / np.asarray(self.dhw_shape)
        return (dhw + 0.5) * scale - 0.5

    # ------------------------------------------------------------------ probabilities out
    def to_original(self, model_map: torch.Tensor, model_box: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        """Model-grid map (D, H, W) -> float32 numpy on the original (I, J, K) grid.

        Only the original-grid region covered by ``model_box`` (a bounding box on the model grid) is
        resampled; everything outside it is zero. The block is written straight into the original-order array
        through its reoriented view (the former path filled a model-order array and then copied the whole volume
        into the original axis order: 1.5 s of a 512x512x300 CT per prompt on one core).
        """
        dhw = self.dhw_shape
        former = RESAMPLER == "separable"
        out = np.zeros(dhw if former else self.reorientation.original_shape, dtype=np.float32)
        if model_box is None:
            model_box = tuple(slice(0, n) for n in self.model_shape)
        block = []
        for axis in range(3):
            m0, m1, _ = model_box[axis].indices(self.model_shape[axis])
            n_out, n_in = dhw[axis], self.model_shape[axis]
            # output voxels whose source coordinate falls inside [m0 - 1, m1] (one voxel margin for interpolation)
            o0 = max(0, int(np.floor((m0 - 1 + 0.5) * n_out / n_in - 0.5)))
            o1 = min(n_out, int(np.ceil((m1 + 0.5) * n_out / n_in - 0.5)) + 1)
            block.append(slice(o0, max(o0, o1)))
        if not all(b.stop > b.start for b in block):
            return np.ascontiguousarray(self._from_dhw(out)) if former else out
        crop = [source_range(self.model_shape[a], dhw[a], block[a].start, block[a].stop) for a in range(3)]
        sub = model_map[crop[0][0]:crop[0][1], crop[1][0]:crop[1][1], crop[2][0]:crop[2][1]].float()
        if former:
            resampled = resample_block(sub, dhw, tuple(block), in_shape=self.model_shape,
                                       offset=tuple(c[0] for c in crop))
            out[block[0], block[1], block[2]] = resampled.cpu().numpy()
            return np.ascontiguousarray(self._from_dhw(out))
        # Interpolation matrices of the block (rows) from the crop (columns), per model axis, then everything in the
        # original axis order: the small crop is reoriented (a copy of model-grid size), each axis is one GEMM, and the
        # block lands in ``out`` as a contiguous region.
        reo = self.reorientation
        matrices: list[torch.Tensor | None] = [None, None, None]
        target = [slice(0)] * 3
        for c in range(3):  # canonical axis c = original axis perm[c] = model axis 2 - c
            a, o = 2 - c, reo.perm[c]
            target[o] = block[a]
            if reo.flip[c]:
                target[o] = slice(dhw[a] - block[a].stop, dhw[a] - block[a].start)
            if self.model_shape[a] == dhw[a]:  # same size: the block is the crop's part (flipped by the view below)
                sub = sub.narrow(a, block[a].start - crop[a][0], block[a].stop - block[a].start)
                continue
            m = axis_matrix(self.model_shape[a], dhw[a], device=sub.device, low_pass=False)
            m = m[block[a], crop[a][0]:crop[a][1]]
            matrices[o] = m.flip(0).flip(1) if reo.flip[c] else m
        original_order = self._from_dhw(sub).contiguous()
        out[target[0], target[1], target[2]] = resample_axes(original_order, matrices).cpu().numpy()
        return out

    def mask_to_model(self, mask: np.ndarray) -> torch.Tensor:
        """A mask on the original grid (I, J, K) -> fraction-covered map on the model grid (D, H, W)."""
        return self.to_model(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)))

