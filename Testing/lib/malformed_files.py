"""Builders of damaged and unusual inputs, the way they turn up in practice, for the malformed-input tests.

Each builder writes real files (NIfTI, NRRD, MetaImage, DICOM, checkpoints, datalists) into a folder and
returns the path to give the command line. Images are tiny so a whole suite of them builds in about a second.
"""
from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
from dicom_series import write_ct_series
from pydicom.uid import generate_uid

SHAPE = (12, 10, 8)


def ct_array(shape=SHAPE, dtype=np.int16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.normal(0, 50, shape) - 500).astype(dtype)


def nifti(path: Path, array: np.ndarray | None = None, affine: np.ndarray | None = None) -> Path:
    array = ct_array() if array is None else array
    nib.save(nib.Nifti1Image(array, np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine), path)
    return path


def truncated(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def nifti_with_pixdim(path: Path, value: float) -> Path:
    """A NIfTI-1 whose third voxel size is ``value`` on disk (nibabel would refuse to write it)."""
    nifti(path)
    raw = bytearray(path.read_bytes())
    raw[88:92] = struct.pack("<f", value)  # pixdim[3]
    path.write_bytes(bytes(raw))
    return path


def itk_image(path: Path, array_kji: np.ndarray, spacing=(2.0, 2.0, 3.0), compress: bool = False) -> Path:
    image = sitk.GetImageFromArray(array_kji)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def nrrd_text(path: Path, directions: str = "(2,0,0) (0,2,0) (0,0,3)", encoding: str = "raw",
              keep: float = 1.0) -> Path:
    """A hand-written NRRD (so its header can say what ITK would never write) with ``keep`` of its data."""
    data = ct_array().astype("<i2").tobytes(order="F")
    if encoding == "gzip":
        import gzip

        data = gzip.compress(data)
    header = (f"NRRD0004\ntype: short\ndimension: 3\nsizes: {SHAPE[0]} {SHAPE[1]} {SHAPE[2]}\n"
              f"space: left-posterior-superior\nspace directions: {directions}\nspace origin: (0,0,0)\n"
              f"encoding: {encoding}\nendian: little\n\n").encode()
    path.write_bytes(header + data[: int(len(data) * keep)])
    return path


def metaimage_text(path: Path, spacing: str = "2 2 3") -> Path:
    data = ct_array().astype("<i2").tobytes(order="F")
    header = (f"ObjectType = Image\nNDims = 3\nDimSize = {SHAPE[0]} {SHAPE[1]} {SHAPE[2]}\n"
              f"ElementSpacing = {spacing}\nElementType = MET_SHORT\nElementDataFile = LOCAL\n").encode()
    path.write_bytes(header + data)
    return path


# ---------------------------------------------------------------------------------------------- DICOM
def dicom_series(folder: Path, slices: int = 6, **kwargs):
    return write_ct_series(folder, columns=16, rows=12, slices=slices, **kwargs)


def edit_dicom(path: Path, **changes) -> None:
    dataset = pydicom.dcmread(path)
    for keyword, value in changes.items():
        if value is None:
            if keyword in dataset:
                delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    dataset.save_as(path)


def tilted_series(folder: Path) -> Path:
    """Slices shifted along the column direction by 1 mm per slice, as a tilted gantry writes them."""
    series = dicom_series(folder)
    for k, path in enumerate(series.files):
        dataset = pydicom.dcmread(path)
        position = [float(v) for v in dataset.ImagePositionPatient]
        position[1] += 1.0 * k
        edit_dicom(path, ImagePositionPatient=[f"{v:.6g}" for v in position], GantryDetectorTilt="15")
    return folder


def uneven_series(folder: Path) -> Path:
    series = dicom_series(folder)
    for k, path in enumerate(series.files):
        dataset = pydicom.dcmread(path)
        position = [float(v) for v in dataset.ImagePositionPatient]
        position[2] += 0.6 * k * k / len(series.files)
        edit_dicom(path, ImagePositionPatient=[f"{v:.6g}" for v in position])
    return folder


def series_missing_slice(folder: Path) -> Path:
    series = dicom_series(folder)
    series.files[2].unlink()
    return folder


def series_truncated_slice(folder: Path) -> Path:
    series = dicom_series(folder)
    truncated(series.files[3], keep=0.8)
    return folder


def two_series(folder: Path) -> Path:
    dicom_series(folder)
    dicom_series(folder, series_description="second", seed=3)
    return folder


def mixed_sizes(folder: Path) -> Path:
    """One SeriesInstanceUID, but the last slices have another matrix size (a mixed series)."""
    first = dicom_series(folder)
    other = write_ct_series(folder / "other", columns=20, rows=12, slices=3, origin_lps=(-20.0, -30.0, 115.0))
    for path in other.files:
        edit_dicom(path, SeriesInstanceUID=first.series_uid)
        shutil.move(path, folder / ("B" + path.name))
    shutil.rmtree(folder / "other")
    return folder


def duplicate_slice(folder: Path) -> Path:
    series = dicom_series(folder)
    copy = folder / "duplicate.dcm"
    shutil.copy(series.files[1], copy)
    uid = generate_uid()
    dataset = pydicom.dcmread(copy)
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = uid
    dataset.save_as(copy)
    return folder


def multiframe(folder: Path) -> Path:
    """A single file with four frames (an enhanced-style multi-frame object)."""
    series = dicom_series(folder, slices=4)
    dataset = pydicom.dcmread(series.files[0])
    frames = [pydicom.dcmread(p).PixelData for p in series.files]
    for path in series.files:
        path.unlink()
    dataset.NumberOfFrames = 4
    dataset.PixelData = b"".join(frames)
    dataset.save_as(folder / "multiframe.dcm")
    return folder


def single_slice(folder: Path) -> Path:
    dicom_series(folder, slices=1)
    return folder


def without_positions(folder: Path) -> Path:
    series = dicom_series(folder)
    for path in series.files:
        edit_dicom(path, ImagePositionPatient=None)
    return folder


def anonymised(folder: Path, slices: int = 6, **kwargs):
    """Blank SOPClassUID (the class only in the file meta), no patient/study optional attributes, shuffled names."""
    series = write_ct_series(folder, columns=24, rows=20, slices=slices, **kwargs)
    for path in series.files:
        edit_dicom(path, SOPClassUID="", PatientBirthDate=None, PatientSex=None, PatientAge=None, StudyID=None,
                   AccessionNumber=None, ReferringPhysicianName=None, InstitutionName=None, StationName=None,
                   BodyPartExamined=None, StudyTime=None, SeriesDate=None, SeriesTime=None)
    return series


# ---------------------------------------------------------------------------------------------- checkpoints
class _RunsCode:
    """Unpickling this calls os.system: a checkpoint that would run code when loaded without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def code_checkpoint(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"format": "refsam3d", "payload": _RunsCode(marker)}, path)
    return path


def wrong_config_checkpoint(source: Path, path: Path) -> Path:
    """A RefSAM3D checkpoint whose stored config says another network size than its weights."""
    import torch

    data = torch.load(source, map_location="cpu", weights_only=True)
    data["config"]["embed_dim"] = int(data["config"]["embed_dim"]) * 2
    torch.save(data, path)
    return path


def foreign_checkpoint(path: Path) -> Path:
    import torch

    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(2, 3, 4, 4)}, path)
    return path
