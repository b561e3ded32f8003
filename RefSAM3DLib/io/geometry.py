"""Voxel-grid geometry as one small value object carried from input to output.

Every prompt and every result is in physical RAS millimetres at the boundaries of the library;
voxel indices exist only inside the engine. ``VolumeGeometry`` is the single conversion point:
its ``affine`` maps (i, j, k) voxel indices of an array indexed ``array[i, j, k]`` to RAS mm,
exactly like a NIfTI affine and like Slicer's IJKToRAS matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    affine: np.ndarray  # (4, 4) IJK -> RAS
    shape: tuple[int, int, int]  # (I, J, K)

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {affine.shape}")
        if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ValueError("affine must be finite and invertible (zero spacing or degenerate direction)")
        affine.setflags(write=False)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"shape must be three positive sizes, got {self.shape}")

    # ------------------------------------------------------------------ derived
    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def origin(self) -> np.ndarray:
        return self.affine[:3, 3].copy()

    @property
    def direction(self) -> np.ndarray:
        """Unit column vectors (RAS) of the i, j, k axes."""
        return self.affine[:3, :3] / self.spacing

    @property
    def affine_lps(self) -> np.ndarray:
        """The IJK -> LPS matrix (DICOM, ITK, NRRD 'left-posterior-superior')."""
        return LPS_FROM_RAS @ self.affine

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    @property
    def axis_codes(self) -> str:
        """Which RAS direction each array axis points to, e.g. 'RAS' or 'LPS' (nibabel's aff2axcodes)."""
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))

    # ------------------------------------------------------------------ conversions
    def ijk_to_ras(self, ijk: np.ndarray) -> np.ndarray:
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def ras_to_ijk(self, ras: np.ndarray) -> np.ndarray:
        ras = np.atleast_2d(np.asarray(ras, dtype=np.float64))
        return (ras - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T

    def contains_ras(self, ras: np.ndarray) -> np.ndarray:
        """True for points inside the volume (voxel centres +- half a voxel)."""
        ijk = self.ras_to_ijk(ras)
        return np.all((ijk >= -0.5) & (ijk <= np.asarray(self.shape) - 0.5), axis=1)

    def same_grid(self, other: "VolumeGeometry", atol_mm: float = 1e-3) -> bool:
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=atol_mm))

    def describe(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        return f"{self.shape[0]}x{self.shape[1]}x{self.shape[2]} voxels, spacing ({sp}) mm, {self.axis_codes}"

    @classmethod
    def from_lps(cls, affine_lps: np.ndarray, shape: tuple[int, int, int]) -> "VolumeGeometry":
        return cls(LPS_FROM_RAS @ np.asarray(affine_lps, dtype=np.float64), shape)

    @classmethod
    def from_spacing(cls, shape: tuple[int, int, int], spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                     direction: np.ndarray | None = None) -> "VolumeGeometry":
        """RAS geometry from spacing, origin and (RAS) direction columns."""
        affine = np.eye(4)
        d = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
        affine[:3, :3] = d * np.asarray(spacing, dtype=np.float64)
        affine[:3, 3] = origin
        return cls(affine, shape)
