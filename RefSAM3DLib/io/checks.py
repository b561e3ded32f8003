"""The one place that decides whether a loaded volume can be segmented and exported, before any model work.

``check_volume`` looks at the data itself: finite voxel values, a positive and plausible voxel spacing and a
size that is a 3D image but not absurdly large. ``check_output_possible`` checks that the requested export
format can be written for this input (a DICOM-SEG needs DICOM sources it can reference). The readers call
both; the engine calls ``check_volume`` when a volume is opened, so volumes that did not come from a file
(the Slicer module's scene nodes, arrays built in code) pass the same checks.
"""
from __future__ import annotations

import os

import numpy as np

from .errors import ExportError, VolumeReadError
from .volume import Volume

MIN_SPACING_MM = 1e-3
MAX_SPACING_MM = 100.0
MAX_VOXELS = 1_500_000_000  # a 1024 x 1024 x 1400 scan still fits; beyond that, crop or resample first
_SLAB = 1 << 24  # voxels per chunk when scanning for NaN, so the check needs no full-size temporary


def check_volume(volume: Volume, where: str | os.PathLike | None = None) -> None:
    """Raise ``VolumeReadError`` (naming ``where`` or the volume's source) if the volume cannot be segmented."""
    where = where or volume.source or "volume"
    shape = tuple(int(n) for n in volume.array.shape)
    if min(shape) < 2:
        raise VolumeReadError(where, f"2D image (size {'x'.join(map(str, shape))})", "RefSAM3D needs a 3D volume")
    voxels = int(np.prod(shape, dtype=np.int64))
    if voxels > MAX_VOXELS:
        raise VolumeReadError(where, f"too large ({'x'.join(map(str, shape))} = {voxels / 1e9:.1f} billion voxels)",
                              "crop or resample it to under 1.5 billion voxels")
    spacing = np.asarray(volume.geometry.spacing, dtype=np.float64)
    if not np.all(np.isfinite(spacing)) or np.any(spacing < MIN_SPACING_MM) or np.any(spacing > MAX_SPACING_MM):
        listing = " x ".join(f"{v:g}" for v in spacing)
        raise VolumeReadError(where, f"voxel spacing {listing} mm is not between {MIN_SPACING_MM:g} and "
                                     f"{MAX_SPACING_MM:g} mm", "fix the image header's spacing")
    if not np.issubdtype(volume.array.dtype, np.number) or np.issubdtype(volume.array.dtype, np.complexfloating):
        raise VolumeReadError(where, f"voxel type {volume.array.dtype} is not a real number",
                              "convert it to a scalar intensity image")
    check_finite(volume.array, where)


def check_finite(array: np.ndarray, where: str | os.PathLike) -> None:
    """Raise ``VolumeReadError`` if a floating-point array holds NaN or infinite values."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    bad = _count_non_finite(array)
    if bad == array.size:
        raise VolumeReadError(where, "every voxel is NaN or infinite (no image data)",
                              "check the file; it holds no usable intensities")
    if bad:
        raise VolumeReadError(where, f"{bad} voxels are NaN or infinite",
                              "replace them with a background value (e.g. -1024 for CT) and save again")


def _count_non_finite(array: np.ndarray) -> int:
    flat = array.reshape(-1, order="A")
    return int(sum(int(np.count_nonzero(~np.isfinite(flat[start:start + _SLAB])))
                   for start in range(0, flat.size, _SLAB)))


def check_output_possible(volume: Volume, fmt: str, out: str | os.PathLike) -> None:
    """Raise ``ExportError`` when ``fmt`` cannot be written for ``volume`` (checked before the model runs)."""
    if fmt != "dicom-seg":
        return
    if not volume.dicom_files:
        raise ExportError(out, f"DICOM-SEG needs a DICOM series as input (this one came from "
                               f"{volume.source or 'memory'})", "write .nii.gz or .seg.nrrd instead")
    from .dicomseg_export import source_headers

    source_headers(out, volume)
