"""Is a DICOM series one regular 3D grid? Checked on the headers before ITK stacks the slices.

ITK's series reader silently drops a damaged slice, stacks slices across a gap or uneven spacing as if they
were evenly spaced, ignores a gantry tilt and reads only what it understands of multi-frame objects. Each of
those would give a mask in the wrong place, so this module refuses them with one ``VolumeReadError`` line:
a truncated or unreadable slice, multi-frame objects, mixed image sizes or orientations, two slices at one
position, missing slices, uneven spacing and tilted slice stacks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from .errors import VolumeReadError

GAP_RATIO = 1.5  # a step this many times the usual one means slices are missing
SPACING_TOLERANCE_MM = 0.05  # jitter of real scanners' positions stays well below this
SPACING_TOLERANCE_RELATIVE = 0.02
_CONVERT = "convert the series to NIfTI with a tool that resamples it (e.g. dcm2niix), or read the complete series"


def check_series(folder: Path, series_uid: str, files: list[str]) -> None:
    """Raise ``VolumeReadError`` unless ``files`` (ITK's sorted list) are the whole series and form a regular grid."""
    members = _series_members(folder, series_uid)
    listed = {Path(name).resolve() for name in files}
    dropped = [path for path in members if path.resolve() not in listed]
    if dropped:
        raise VolumeReadError(dropped[0], f"slice of series {series_uid} cannot be read (damaged or truncated file;"
                                          f" {len(dropped)} such slice(s))", "copy or export the series again")
    datasets = []
    for name in files:
        try:
            datasets.append(pydicom.dcmread(name))
        except Exception:  # noqa: BLE001 - unreadable for any reason is the same message
            raise VolumeReadError(name, "damaged DICOM file", "copy or export the series again") from None
    for name, dataset in zip(files, datasets):
        _check_single_frame(Path(name), dataset)
        _check_pixel_data(Path(name), dataset)
    _check_same_plane(folder, datasets)
    _check_positions(folder, datasets)


def _series_members(folder: Path, series_uid: str) -> list[Path]:
    """Every DICOM file in ``folder`` whose header names ``series_uid`` (damaged pixel data included)."""
    members = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
        except (InvalidDicomError, OSError, ValueError, EOFError, AttributeError, KeyError, TypeError):
            continue
        if str(header.get("SeriesInstanceUID", "")) == series_uid:
            members.append(path)
    return members


def _check_single_frame(path: Path, dataset: pydicom.Dataset) -> None:
    frames = dataset.get("NumberOfFrames")
    if frames not in (None, "") and int(frames) > 1:
        raise VolumeReadError(path, f"multi-frame DICOM object ({int(frames)} frames in one file) is not supported",
                              "convert it to NIfTI (e.g. with dcm2niix) or export a classic one-file-per-slice series")


def _check_pixel_data(path: Path, dataset: pydicom.Dataset) -> None:
    if "PixelData" not in dataset:
        raise VolumeReadError(path, "DICOM file without pixel data", "point to an image series, not a report or SEG")
    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    if syntax is not None and pydicom.uid.UID(syntax).is_compressed:
        return  # encapsulated frames: their length is not fixed, the decoder checks them
    try:
        expected = (int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1))
                    * int(dataset.BitsAllocated) // 8)
    except (AttributeError, TypeError, ValueError):
        raise VolumeReadError(path, "DICOM image without Rows/Columns/BitsAllocated", "export the series again") from None
    if len(dataset.PixelData) < expected:
        raise VolumeReadError(path, f"truncated slice ({len(dataset.PixelData)} of {expected} bytes of pixel data)",
                              "copy or export the series again")


def _check_same_plane(folder: Path, datasets: list[pydicom.Dataset]) -> None:
    sizes = {(int(d.Rows), int(d.Columns)) for d in datasets}
    if len(sizes) > 1:
        listing = ", ".join(f"{c}x{r}" for r, c in sorted(sizes))
        raise VolumeReadError(folder, f"mixed series: slices of different sizes ({listing})",
                              "separate the series (each size is a different image) and read one of them")
    orientations = [_orientation(folder, d) for d in datasets]
    if any(not np.allclose(o, orientations[0], atol=1e-4) for o in orientations):
        raise VolumeReadError(folder, "mixed series: slices with different orientations",
                              "separate the series (e.g. axial and coronal) and read one of them")


def _orientation(folder: Path, dataset: pydicom.Dataset) -> np.ndarray:
    try:
        orientation = np.asarray([float(v) for v in dataset.ImageOrientationPatient], dtype=np.float64)
        np.asarray([float(v) for v in dataset.ImagePositionPatient], dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        raise VolumeReadError(folder, "slices without ImagePositionPatient/ImageOrientationPatient",
                              "a 3D volume needs slice positions; export the series with its geometry") from None
    if orientation.shape != (6,):
        raise VolumeReadError(folder, "malformed ImageOrientationPatient", "export the series again")
    return orientation


def _check_positions(folder: Path, datasets: list[pydicom.Dataset]) -> None:
    if len(datasets) < 2:
        return  # a single slice is refused later as a 2D image
    orientation = np.asarray([float(v) for v in datasets[0].ImageOrientationPatient], dtype=np.float64)
    row, column = orientation[:3], orientation[3:]
    normal = np.cross(row, column)
    positions = np.asarray([[float(v) for v in d.ImagePositionPatient] for d in datasets], dtype=np.float64)
    along = positions @ normal
    order = np.argsort(along)
    along, positions = along[order], positions[order]
    steps = np.diff(along)
    if np.any(steps < SPACING_TOLERANCE_MM):
        raise VolumeReadError(folder, "two slices at the same position (duplicate slices or several acquisitions "
                                      "in one series)", "keep one acquisition in the folder and read it again")
    usual = float(np.median(steps))
    tolerance = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_RELATIVE * usual)
    in_plane = (positions - positions[0]) - np.outer(along - along[0], normal)
    if np.max(np.linalg.norm(in_plane, axis=1)) > 2 * tolerance:
        raise VolumeReadError(folder, "tilted slice stack (gantry tilt: slices are shifted within their plane)",
                              f"{_CONVERT}; Slicer can also correct it (Acquisition transform)")
    if np.max(steps) > GAP_RATIO * usual:
        missing = int(round(float(np.sum(np.round(steps / usual) - 1))))
        where = int(np.argmax(steps))
        raise VolumeReadError(folder, f"about {max(missing, 1)} slice(s) missing (gap of {np.max(steps):.2f} mm "
                                      f"after slice {where + 1} of {len(datasets)}; usual spacing {usual:.2f} mm)",
                              "copy the complete series (all slices) and read it again")
    if np.max(steps) - np.min(steps) > tolerance:
        raise VolumeReadError(folder, f"uneven slice spacing ({np.min(steps):.2f} to {np.max(steps):.2f} mm)",
                              _CONVERT)
