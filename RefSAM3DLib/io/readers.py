"""Read any common 3D medical image into a ``Volume`` with its exact physical geometry.

Everything goes through SimpleITK so that NIfTI, NRRD, MetaImage and DICOM series share one geometry path:
ITK reports origin, spacing and direction in LPS, we build the IJK->LPS matrix from them and convert once to
RAS with ``VolumeGeometry.from_lps``. ITK arrays are [k, j, i]; volumes are [i, j, k] (the NIfTI/nibabel order).

Nothing damaged gets through: files are checked to be whole (``completeness``), DICOM series to be one regular
grid (``dicom_checks``) and every volume to hold usable data (``checks.check_volume``) before it is returned.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .checks import check_volume
from .completeness import check_file_complete
from .dicom_checks import check_series
from .errors import VolumeReadError
from .geometry import VolumeGeometry
from .volume import Volume

sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK warnings go to stderr; every problem here is an error

IMAGE_EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SUPPORTED = "NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) or a DICOM series folder"


def read_volume(path: str | os.PathLike, modality: str | None = None, frame: int | None = None,
                series_uid: str | None = None) -> Volume:
    """Read a 3D image file or DICOM series (folder, or one of its files) with exact geometry and native dtype."""
    path = Path(path)
    if not path.exists():
        raise VolumeReadError(path, "no such file or folder", "check the path")
    if path.is_dir() or _is_dicom_file(path):
        volume = _read_dicom_series(path, modality, series_uid)
    else:
        check_file_complete(path)
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError:
            raise VolumeReadError(path, "not a readable image (unsupported or damaged file)",
                                  f"use {SUPPORTED}") from None
        image = _select_frame(image, path, frame)
        volume = Volume(array=_array_ijk(image), geometry=_geometry(image, path), modality=modality, source=str(path))
    check_volume(volume, path)
    return volume


def read_label_volume(path: str | os.PathLike) -> Volume:
    """Read a label map (e.g. training labels) as integers; float files with integral values are accepted."""
    volume = read_volume(path)
    array = volume.array
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise VolumeReadError(path, "label values are not whole numbers", "pass a label map, not an image")
        array = array.astype(_smallest_label_dtype(array))
    volume.array = array
    return volume


# ---------------------------------------------------------------------------------------------- files
def _select_frame(image: sitk.Image, path: Path, frame: int | None) -> sitk.Image:
    """Reduce a 4D image (or a vector image, whose components are frames) to the 3D frame the user asked for."""
    if image.GetDimension() == 2:
        raise VolumeReadError(path, "2D image (a single slice)", "RefSAM3D needs a 3D volume")
    components = image.GetNumberOfComponentsPerPixel()
    frames = image.GetSize()[3] if image.GetDimension() == 4 else components
    if image.GetDimension() == 4 and components > 1:
        raise VolumeReadError(path, "4D image with vector voxels", "convert it to one 3D scalar image per frame")
    if frames > 1 and frame is None:
        raise VolumeReadError(path, f"4D image with {frames} frames", f"pass frame=K (0..{frames - 1}) to use one frame")
    if frame is not None and not 0 <= frame < max(frames, 1):
        raise VolumeReadError(path, f"frame {frame} does not exist (the image has {frames} frames)",
                              f"pass frame=K (0..{frames - 1})")
    index = frame or 0
    if image.GetDimension() == 4:
        size = list(image.GetSize())
        image = sitk.Extract(image, size=size[:3] + [0], index=[0, 0, 0, index])
    elif components > 1:
        image = sitk.VectorIndexSelectionCast(image, index)
    if min(image.GetSize()) < 2:
        raise VolumeReadError(path, f"2D image (size {'x'.join(map(str, image.GetSize()))})",
                              "RefSAM3D needs a 3D volume")
    return image


def _array_ijk(image: sitk.Image) -> np.ndarray:
    """Voxels as [i, j, k] without a copy (ITK memory is [k, j, i]; the transpose is Fortran-contiguous)."""
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0)


def _geometry(image: sitk.Image, path: Path) -> VolumeGeometry:
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    affine_lps[:3, 3] = image.GetOrigin()
    try:
        return VolumeGeometry.from_lps(affine_lps, image.GetSize())
    except ValueError as error:
        raise VolumeReadError(path, f"invalid geometry ({error})", "fix the image header") from None


def _smallest_label_dtype(array: np.ndarray) -> type:
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    for dtype in (np.uint8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype
    return np.int64


# ---------------------------------------------------------------------------------------------- DICOM
def _is_dicom_file(path: Path) -> bool:
    """DICOM Part 10 files carry 'DICM' after a 128-byte preamble, whatever their name."""
    if not path.is_file() or path.name.lower().endswith(IMAGE_EXTENSIONS):
        return False
    if path.suffix.lower() in (".dcm", ".ima"):
        return True
    with open(path, "rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def _read_dicom_series(path: Path, modality: str | None, series_uid: str | None) -> Volume:
    folder = path if path.is_dir() else path.parent
    if series_uid is None and path.is_file():
        series_uid = _series_uid_of(path)
    uids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
    if not uids:
        problem = "empty folder" if not any(folder.iterdir()) else "no DICOM image series in this folder"
        raise VolumeReadError(folder, problem, f"point to a folder holding one DICOM series, or to a file ({SUPPORTED})")
    if series_uid is None:
        if len(uids) > 1:
            listing = ", ".join(f"{uid} ({len(_series_files(folder, uid))} slices)" for uid in uids)
            raise VolumeReadError(folder, f"{len(uids)} DICOM series: {listing}", "point to one file of the series you want (or pass series_uid=...)")
        series_uid = uids[0]
    elif series_uid not in uids:
        raise VolumeReadError(folder, f"no DICOM series {series_uid} (found: {', '.join(uids)})",
                              "pass one of the listed series_uid values")
    files = _series_files(folder, series_uid)
    check_series(folder, series_uid, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown reason"
        raise VolumeReadError(folder, f"DICOM series {series_uid} could not be read ({reason})",
                              "check that all its slices are present and uncompressed or in a supported syntax") from None
    image = _select_frame(image, folder, None)
    return Volume(array=_array_ijk(image), geometry=_geometry(image, folder),
                  modality=modality or _dicom_modality(files[0]), source=str(folder), dicom_files=list(files))


def _series_files(folder: Path, series_uid: str) -> list[str]:
    """File names sorted by slice position along the normal; this order is the k axis of the read volume."""
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid))


def _series_uid_of(path: Path) -> str | None:
    import pydicom

    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"]).SeriesInstanceUID)
    except Exception:  # noqa: BLE001 - unreadable header: fall back to the folder's only series
        return None


def _dicom_modality(file_name: str) -> str | None:
    import pydicom

    try:
        value = pydicom.dcmread(file_name, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality")
    except Exception:  # noqa: BLE001 - a missing tag leaves the modality to be guessed downstream
        return None
    return str(value) if value else None
