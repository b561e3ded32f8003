"""Write a small but complete CT DICOM series (a valid CT Image IOD) for reader and DICOM-SEG tests.

The phantom is an elliptic body of soft tissue with two organ-like blobs and a bone, stored as unsigned
values with a rescale intercept of -1024 HU, the way many scanners store CT. Files are written in a shuffled
order with names that do not sort by position, so readers must sort by geometry, not by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

RESCALE_INTERCEPT = -1024.0


@dataclass
class CTSeries:
    folder: Path
    files: list[Path]  # in slice order (increasing position along the slice normal)
    hounsfield: np.ndarray  # int16 (columns, rows, slices) = the [i, j, k] array a reader should return
    series_uid: str
    affine_lps: np.ndarray  # IJK -> LPS


def rotation_about_z(degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    return np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])


def phantom_hounsfield(columns: int = 48, rows: int = 56, slices: int = 40, seed: int = 0) -> np.ndarray:
    """Air around an elliptic body (40 HU), a liver-like blob (60 HU), a kidney-like blob (30 HU), a bone (700 HU)."""
    i, j, k = np.meshgrid(np.linspace(-1, 1, columns), np.linspace(-1, 1, rows), np.linspace(-1, 1, slices),
                          indexing="ij")
    hu = np.full((columns, rows, slices), -1000.0)
    hu[(i / 0.9) ** 2 + (j / 0.8) ** 2 <= 1.0] = 40.0
    hu[((i + 0.35) / 0.35) ** 2 + ((j + 0.1) / 0.4) ** 2 + ((k - 0.2) / 0.5) ** 2 <= 1.0] = 60.0
    hu[((i - 0.45) / 0.15) ** 2 + ((j - 0.2) / 0.2) ** 2 + ((k + 0.1) / 0.35) ** 2 <= 1.0] = 30.0
    hu[(i / 0.12) ** 2 + ((j - 0.55) / 0.12) ** 2 <= 1.0] = 700.0
    hu += np.random.default_rng(seed).normal(0.0, 8.0, hu.shape)
    return np.clip(np.round(hu), -1024, 3071).astype(np.int16)


def write_ct_series(folder: str | Path, columns: int = 48, rows: int = 56, slices: int = 40,
                    spacing=(0.8, 0.9, 2.5), origin_lps=(-20.0, -30.0, 100.0), rotation: np.ndarray | None = None,
                    series_description: str = "Synthetic abdomen", study_uid: str | None = None,
                    seed: int = 0) -> CTSeries:
    """Write the series into ``folder``; ``rotation`` (3x3, LPS) tilts the image plane for oblique tests."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    directions = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    row_direction, column_direction, normal = directions[:, 0], directions[:, 1], directions[:, 2]
    hounsfield = phantom_hounsfield(columns, rows, slices, seed)
    stored = (hounsfield.astype(np.int32) - int(RESCALE_INTERCEPT)).astype(np.uint16)
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = generate_uid(), generate_uid()
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = directions * np.asarray(spacing, dtype=np.float64)
    affine_lps[:3, 3] = origin_lps
    order = np.random.default_rng(seed + 1).permutation(slices)
    files: list[Path] = [Path()] * slices
    for written, k in enumerate(order):
        position = np.asarray(origin_lps) + k * spacing[2] * normal
        dataset = _ct_slice(stored[:, :, k].T, position, row_direction, column_direction, spacing, k, study_uid,
                            series_uid, frame_uid, series_description)
        files[k] = folder / f"IM{written:04d}_{dataset.SOPInstanceUID[-6:]}.dcm"
        dataset.save_as(files[k], enforce_file_format=True)
    return CTSeries(folder, files, hounsfield, series_uid, affine_lps)


def _ct_slice(pixels_rows_columns: np.ndarray, position, row_direction, column_direction, spacing, k: int,
              study_uid: str, series_uid: str, frame_uid: str, series_description: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240102"
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "101500"
    ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "A0001", "", "1"
    ds.Modality, ds.Manufacturer, ds.InstitutionName = "CT", "RefSAM3D test phantom", "Nowhere"
    ds.StationName, ds.SeriesDescription, ds.ManufacturerModelName = "PHANTOM", series_description, "Synthetic"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex, ds.PatientAge = "Phantom^Abdomen", "P0001", "19700101", "O", "054Y"
    ds.BodyPartExamined, ds.PatientPosition = "ABDOMEN", "HFS"  # no Laterality: unpaired body part
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
    ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = 2, 1, k + 1
    ds.PositionReferenceIndicator = ""
    ds.ScanOptions, ds.KVP, ds.DataCollectionDiameter, ds.ReconstructionDiameter = "HELICAL MODE", "120", "500", "360"
    ds.ConvolutionKernel, ds.PatientOrientation = "STANDARD", ""
    ds.ImagePositionPatient = [f"{value:.6g}" for value in position]
    ds.ImageOrientationPatient = [f"{value:.8f}" for value in (*row_direction, *column_direction)]
    ds.SliceLocation = f"{float(np.dot(position, np.cross(row_direction, column_direction))):.6g}"
    ds.SliceThickness = f"{spacing[2]:.6g}"
    ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[0]:.6g}"]  # row spacing (between rows), column spacing
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels_rows_columns.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = f"{RESCALE_INTERCEPT:g}", "1", "HU"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.PixelData = np.ascontiguousarray(pixels_rows_columns, dtype=np.uint16).tobytes()
    return ds


def read_hounsfield(file_name: str | Path) -> np.ndarray:
    """One slice in HU as (rows, columns): what a viewer shows for that instance."""
    dataset = pydicom.dcmread(file_name)
    return pydicom.pixels.apply_modality_lut(dataset.pixel_array, dataset)
