"""One entry point for saving results, choosing the format from an explicit name or the file extension."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .dicomseg_export import write_dicom_seg
from .errors import ExportError
from .nifti_export import sidecar_path_for, write_nifti_labelmap
from .output_names import check_output_name
from .segments import SegmentOutput
from .segnrrd_export import write_seg_nrrd
from .volume import Volume

FORMATS = ("nifti", "seg.nrrd", "dicom-seg")
EXTENSIONS = {".nii.gz": "nifti", ".nii": "nifti", ".seg.nrrd": "seg.nrrd", ".dcm": "dicom-seg"}


@dataclass
class ExportResult:
    format: str
    paths: list[Path]  # every file written (a NIfTI label map comes with its JSON sidecar)
    skipped_segments: list[str] = field(default_factory=list)  # empty segments a format could not store


def export_format_for(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format to write: ``fmt`` if given, else the one the file name's extension implies."""
    accepted = f"use a file name ending in {', '.join(EXTENSIONS)} or a format one of {', '.join(FORMATS)}"
    if fmt is not None:
        normalized = fmt.strip().lower().lstrip(".")
        aliases = {"nii": "nifti", "nii.gz": "nifti", "segnrrd": "seg.nrrd", "dicomseg": "dicom-seg", "dcm": "dicom-seg",
                   "seg": "dicom-seg"}
        normalized = aliases.get(normalized, normalized)
        if normalized not in FORMATS:
            raise ExportError(path, f"unknown export format {fmt!r}", accepted)
        return normalized
    name = Path(path).name.lower()
    for extension, format_name in EXTENSIONS.items():
        if name.endswith(extension):
            return format_name
    raise ExportError(path, "cannot tell the export format from the file name", accepted)


def output_paths(path: str | os.PathLike, fmt: str) -> list[Path]:
    """Every file an export to ``path`` in ``fmt`` creates (a NIfTI label map comes with its JSON sidecar).

    ``ExportError`` if the name does not fit the format, so the command line can refuse it before any work.
    """
    check_output_name(path, fmt)
    if fmt == "nifti":
        return [Path(path), sidecar_path_for(path)]
    return [Path(path)]


def export_segments(path: str | os.PathLike, segments: Sequence[SegmentOutput], volume: Volume,
                    fmt: str | None = None, overwrite: bool = False) -> ExportResult:
    """Write ``segments`` (on ``volume``'s grid) as a NIfTI label map, a Slicer .seg.nrrd or a DICOM-SEG."""
    format_name = export_format_for(path, fmt)
    if format_name == "nifti":
        image, sidecar = write_nifti_labelmap(path, segments, volume.geometry, overwrite)
        return ExportResult(format_name, [image, sidecar])
    if format_name == "seg.nrrd":
        return ExportResult(format_name, [write_seg_nrrd(path, segments, volume.geometry, overwrite)])
    written, skipped = write_dicom_seg(path, segments, volume, overwrite)
    return ExportResult(format_name, [written], skipped)
