"""DICOM Segmentation (SEG) objects that PACS and DICOM viewers accept, referencing the CT/MR they came from.

A SEG frame is tied to one source instance, so the mask must be cut along the source series' own slices:
the DICOM series reader makes i = column, j = row and k = the slice order of ``volume.dicom_files``; a frame
for slice k is therefore ``mask[:, :, k].T`` (rows x columns).

Real series are often anonymised in ways that break strict writers (a blank SOPClassUID with the class only in
the file meta, no patient or study dates). ``source_headers`` reads the sources' headers and completes the
in-memory copies from what the files do say; the source files themselves are never changed. It is also the
check, run before the model, that a DICOM-SEG can be written for the series at all.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from ..vocab.codes import Code
from .atomic import atomic_output, check_writable
from .errors import ExportError
from .provenance import ALGORITHM_NAME, refsam3d_version
from .segments import SegmentOutput
from .volume import Volume

CONTENT_CREATOR = "RefSAM3D^Model"  # Family^Given, as a DICOM person name
ALGORITHM_TYPES = {"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"}


def write_dicom_seg(path: str | os.PathLike, segments: Sequence[SegmentOutput], volume: Volume,
                    overwrite: bool = False) -> tuple[Path, list[str]]:
    """Write a BINARY SEG of the non-empty segments; return the path and the names of skipped empty segments."""
    path = Path(path)
    if not volume.dicom_files:
        raise ExportError(path, "DICOM-SEG needs a volume read from a DICOM series (this one came from "
                                f"{volume.source or 'memory'})", "export as NIfTI or .seg.nrrd instead")
    check_writable(path, overwrite)
    sources = source_headers(path, volume)
    kept = [segment for segment in segments if _mask_of(segment, volume).any()]
    skipped = [segment.name for segment in segments if segment not in kept]
    if not kept:
        raise ExportError(path, "every segment is empty (nothing was found)", "there is nothing to store in a DICOM-SEG")
    # (frames, rows, columns, segments); frame k belongs to source instance k
    pixels = np.stack([_mask_of(segment, volume).transpose(2, 1, 0) for segment in kept], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_describe(number, segment) for number, segment in enumerate(kept, start=1)],
        series_instance_uid=hd.UID(),
        series_number=_free_series_number(sources[0]),
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=ALGORITHM_NAME,
        manufacturer_model_name=ALGORITHM_NAME,
        software_versions=refsam3d_version(),
        device_serial_number="0",
        content_description="RefSAM3D text/click prompted segmentation"[:64],
        content_creator_name=CONTENT_CREATOR,
        content_label="REFSAM3D",
        series_description=f"{ALGORITHM_NAME} segmentation"[:64],
    )
    with atomic_output(path, overwrite) as temporary:
        seg.save_as(temporary)
    return path, skipped


# Type 2 attributes highdicom copies from the first source: present (possibly empty) in every valid SEG.
_PATIENT_AND_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                      "StudyDate", "StudyTime", "ReferringPhysicianName")
_REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Rows", "Columns",
             "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")


def source_headers(path: str | os.PathLike, volume: Volume) -> list[pydicom.Dataset]:
    """The sources' headers, completed in memory so a valid SEG can reference them; ``ExportError`` if impossible."""
    datasets = []
    for name in volume.dicom_files:
        try:
            # highdicom needs the source headers only; skipping pixel data keeps large series cheap
            dataset = pydicom.dcmread(name, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - any unreadable source means the same to the user
            raise ExportError(path, f"source DICOM file {name} cannot be read", "re-read the series") from None
        datasets.append(_completed(path, name, dataset))
    _check_sources_match(path, datasets, volume)
    return datasets


def _completed(path, name: str, dataset: pydicom.Dataset) -> pydicom.Dataset:
    meta = getattr(dataset, "file_meta", None) or pydicom.Dataset()
    for keyword, meta_keyword in (("SOPClassUID", "MediaStorageSOPClassUID"),
                                  ("SOPInstanceUID", "MediaStorageSOPInstanceUID")):
        if not str(dataset.get(keyword, "") or "").strip():
            value = str(meta.get(meta_keyword, "") or "").strip()
            if not value:
                raise ExportError(path, f"source {name} has no {keyword} (neither in the data set nor in its file "
                                        "meta)", "export as NIfTI or .seg.nrrd instead")
            setattr(dataset, keyword, value)
    missing = [keyword for keyword in _REQUIRED if not str(dataset.get(keyword, "") or "").strip()]
    if missing:
        raise ExportError(path, f"source {name} has no {', '.join(missing)}, which a DICOM-SEG must reference",
                          "export as NIfTI or .seg.nrrd instead")
    if not str(dataset.get("Modality", "") or "").strip():
        dataset.Modality = "OT"
    for keyword in _PATIENT_AND_STUDY:
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    return dataset


def _describe(number: int, segment: SegmentOutput) -> hd.seg.SegmentDescription:
    algorithm_type = segment.algorithm_type.upper()
    if algorithm_type not in ALGORITHM_TYPES:
        raise ExportError(segment.name, f"unknown SegmentAlgorithmType {segment.algorithm_type!r}",
                          f"use one of {', '.join(sorted(ALGORITHM_TYPES))}")
    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=segment.name[:64],
        segmented_property_category=_coded(segment.terminology.category),
        segmented_property_type=_coded(segment.terminology.type),
        algorithm_type=algorithm_type,
        algorithm_identification=None if algorithm_type == "MANUAL" else hd.AlgorithmIdentificationSequence(
            name=ALGORITHM_NAME, family=codes.cid7162.ArtificialIntelligence, version=refsam3d_version()),
        tracking_id=segment.name[:64],
        tracking_uid=hd.UID(),
        display_color=hd.color.CIELabColor.from_rgb(*(float(c) for c in segment.color)),
        anatomic_regions=None if segment.terminology.anatomic_region is None else [
            _coded(segment.terminology.anatomic_region)],
    )
    if segment.terminology.modifier is not None:
        # The modifier (e.g. laterality) qualifies the type, so it sits inside the type's code item.
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _coded(segment.terminology.modifier)]
    return description


def _coded(code: Code) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning[:64])


def _mask_of(segment: SegmentOutput, volume: Volume) -> np.ndarray:
    mask = np.asarray(segment.mask)
    if mask.shape != volume.array.shape:
        raise ExportError(segment.name, f"mask shape {mask.shape} is not the volume grid {volume.array.shape}",
                          "export masks on the input volume's grid")
    return mask.astype(bool, copy=False)


def _check_sources_match(path: Path, sources: list[pydicom.Dataset], volume: Volume) -> None:
    """The SEG's frames are laid out from the volume; refuse if the source files no longer match its grid."""
    columns, rows, slices = volume.array.shape
    if len(sources) != slices or any(int(s.Rows) != rows or int(s.Columns) != columns for s in sources):
        raise ExportError(path, f"the {len(sources)} source DICOM files do not match the volume grid "
                                f"{columns}x{rows}x{slices}", "re-read the series with read_volume")


def _free_series_number(source: pydicom.Dataset) -> int:
    """A series number unlikely to clash with the source series in a viewer's list."""
    number = source.get("SeriesNumber")
    return int(number) + 1000 if number not in (None, "") else 1000
