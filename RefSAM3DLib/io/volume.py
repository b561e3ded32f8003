"""A loaded image: voxel array plus geometry plus what we know about where it came from."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import VolumeGeometry


@dataclass
class Volume:
    """``array`` is indexed [i, j, k] (nibabel order; Slicer's arrayFromVolume is the transpose [k, j, i])."""

    array: np.ndarray
    geometry: VolumeGeometry
    modality: str | None = None  # "CT", "MR" or None (unknown: the engine guesses from intensities)
    source: str | None = None  # file or folder it was read from
    dicom_files: list[str] = field(default_factory=list)  # source instances, in slice order, for DICOM-SEG

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"volume array must be 3D (i, j, k), got shape {self.array.shape}")
        if tuple(self.array.shape) != tuple(self.geometry.shape):
            raise ValueError(f"array shape {self.array.shape} != geometry shape {self.geometry.shape}")

    @property
    def name(self) -> str:
        if not self.source:
            return "volume"
        from pathlib import Path

        p = Path(self.source)
        name = p.name
        for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".seg.nrrd"):
            if name.lower().endswith(suffix):
                return name[: -len(suffix)]
        return name
