"""Export the segments of a segmentation from the panel through the backend's exporters.

Segments become ``SegmentOutput`` values (voxels on the source volume's grid, name, colour, the coded
terminology read back from the segment's TerminologyEntry tag), and ``RefSAM3DLib.io.exporters`` writes a
NIfTI label map (+ JSON sidecar), a Slicer ``.seg.nrrd`` or a DICOM-SEG. A DICOM-SEG references the
instances the volume was loaded from: Slicer's DICOM loader keeps their UIDs in the volume's
``DICOM.instanceUIDs`` attribute, and a resolver (``slicer.dicomDatabase.fileForInstance`` in the app)
gives their files, which are put in the volume's slice order by their positions. Nothing is ever
overwritten unless the caller passes ``overwrite=True`` after asking the user (``existing_outputs`` says
which files would be replaced). DICOM-SEG needs highdicom >= 0.23 and so pydicom 3; where Slicer bundles pydicom
2.4 it is refused with ``DicomSegSupportMissing`` until the user installs DICOM-SEG support (NIfTI and
.seg.nrrd work with the bundled pydicom). Before RefSAM3D's packages are installed (nibabel is not bundled with
Slicer), an export is refused with ``ExportPackagesMissing``: one line, no traceback.

The panel exports in two halves: ``prepare_export`` reads the scene on the main thread (MRML is not thread-safe),
and ``PreparedExport.start`` writes the files on a thread of its own, so compressing a NIfTI or writing a DICOM-SEG
never freezes Slicer.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import mrml_adapter as mrml
from .errors import InputError

DICOM_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"


class DicomSegSupportMissing(InputError):
    """DICOM-SEG needs newer pydicom/highdicom than this Slicer has; the panel offers to install them."""


class ExportPackagesMissing(InputError):
    """A package the exporters need is not installed yet; the panel offers to install RefSAM3D's dependencies."""


FORMAT_EXTENSIONS = {"nifti": ".nii.gz", "seg.nrrd": ".seg.nrrd", "dicom-seg": ".dcm"}


def backend_exporters():
    """The backend's ``RefSAM3DLib.io.exporters``; a package it needs that is missing becomes one line to act on."""
    try:
        from RefSAM3DLib.io import exporters
    except ImportError as error:
        raise ExportPackagesMissing(
            f"exporting needs the Python package '{error.name or error}', which is not installed yet; press "
            "'Install dependencies' in the RefSAM3D panel, then export again") from error
    return exporters


def output_path(folder: str | os.PathLike, segmentation_node, fmt: str) -> Path:
    """Default file for a format: '<folder>/<segmentation name><extension>' (name made file-safe)."""
    safe = "".join(c if c.isalnum() or c in " ._-" else "_" for c in segmentation_node.GetName()).strip() or "segmentation"
    return Path(folder) / (safe + FORMAT_EXTENSIONS[fmt])


def existing_outputs(path: str | os.PathLike, fmt: str | None = None) -> list[Path]:
    """The files an export to ``path`` would replace (a NIfTI export also writes a JSON sidecar)."""
    exporters = backend_exporters()
    from RefSAM3DLib.io.nifti_export import sidecar_path_for

    path = Path(path)
    candidates = [path]
    if exporters.export_format_for(path, fmt) == "nifti":
        candidates.append(sidecar_path_for(path))
    return [p for p in candidates if p.exists()]


def segment_outputs(segmentation_node, volume_node, segment_ids: list[str] | None = None) -> list:
    """The segments (all, or ``segment_ids`` in that order) as backend values on ``volume_node``'s grid."""
    from RefSAM3DLib.io.segments import SegmentOutput
    from RefSAM3DLib.vocab.concepts import generic_terminology
    from RefSAM3DLib.vocab.slicer_terminology import parse_slicer_terminology_string

    segmentation = segmentation_node.GetSegmentation()
    ids = segment_ids if segment_ids is not None else [segmentation.GetNthSegmentID(i)
                                                      for i in range(segmentation.GetNumberOfSegments())]
    if not ids:
        raise InputError(f"'{segmentation_node.GetName()}' has no segments to export; segment something first")
    outputs = []
    for segment_id in ids:
        segment = segmentation.GetSegment(segment_id)
        if segment is None:
            raise InputError(f"segment '{segment_id}' is not in '{segmentation_node.GetName()}'; pick it again")
        name = segment.GetName()
        tag = mrml.segment_tag(segmentation_node, segment_id, segment.GetTerminologyEntryTagName())
        try:
            terminology = parse_slicer_terminology_string(tag) if tag else generic_terminology(name)
        except (ValueError, KeyError):
            terminology = generic_terminology(name)
        algorithm = mrml.segment_tag(segmentation_node, segment_id, mrml.TAG_ALGORITHM_TYPE) or "MANUAL"
        presence = mrml.segment_tag(segmentation_node, segment_id, mrml.TAG_PRESENCE)
        mask = mrml.read_mask(segmentation_node, segment_id, volume_node)
        spacing = np.linalg.norm(mrml.world_ijk_to_ras(volume_node)[:3, :3], axis=0)
        outputs.append(SegmentOutput(
            name, mask, tuple(float(c) for c in segment.GetColor()), terminology,
            prompt=mrml.segment_tag(segmentation_node, segment_id, mrml.TAG_PROMPT) or None,
            concept_id=mrml.segment_tag(segmentation_node, segment_id, mrml.TAG_CONCEPT) or None,
            presence=float(presence) if presence else None, found=bool(mask.any()),
            volume_ml=float(mask.sum() * np.prod(spacing) / 1000.0), algorithm_type=algorithm))
    return outputs


def dicom_source_files(volume_node, file_for_instance) -> list[str]:
    """The volume's DICOM files in its slice order (k = 0, 1, ...), from ``DICOM.instanceUIDs``.

    Each file's ImagePositionPatient must be the RAS origin of one slice of the volume, so a volume that was
    resampled, cropped or re-oriented after loading is refused instead of producing a misaligned SEG.
    """
    import pydicom

    uids = (volume_node.GetAttribute(DICOM_UIDS_ATTRIBUTE) or "").split()
    name = volume_node.GetName()
    if not uids:
        raise InputError(f"'{name}' was not loaded from the DICOM database, so a DICOM-SEG cannot reference it; "
                         "export as NIfTI or .seg.nrrd, or load the series through the DICOM module")
    files = []
    for uid in uids:
        file_name = file_for_instance(uid) if file_for_instance is not None else None
        if not file_name or not Path(file_name).is_file():
            raise InputError(f"the DICOM file of instance {uid} of '{name}' is not in the DICOM database any more; "
                             "re-import the series")
        files.append(str(file_name))
    ras_to_ijk = np.linalg.inv(mrml.world_ijk_to_ras(volume_node))
    shape_k = volume_node.GetImageData().GetDimensions()[2]
    by_slice = {}
    for file_name in files:
        header = pydicom.dcmread(file_name, stop_before_pixels=True)
        lps = np.asarray([float(v) for v in header.ImagePositionPatient])
        ijk = ras_to_ijk @ np.array([-lps[0], -lps[1], lps[2], 1.0])
        k = int(round(ijk[2]))
        if np.abs(ijk[:2]).max() > 0.01 or abs(ijk[2] - k) > 0.01 or not 0 <= k < shape_k or k in by_slice:
            raise InputError(f"the DICOM files of '{name}' no longer match its voxel grid (resampled or cropped?); "
                             "export as NIfTI or .seg.nrrd instead")
        by_slice[k] = file_name
    if len(by_slice) != shape_k:
        raise InputError(f"'{name}' has {shape_k} slices but {len(by_slice)} DICOM files; "
                         "export as NIfTI or .seg.nrrd instead")
    return [by_slice[k] for k in range(shape_k)]


@dataclass
class PreparedExport:
    """What an export writes, copied out of the scene: ``write`` touches no MRML node, so it may run on any thread."""

    path: Path
    outputs: list
    volume: object
    fmt: str
    overwrite: bool

    def write(self):
        """Write the files; returns the exporter's ``ExportResult`` (paths written, empty segments skipped)."""
        exporters = backend_exporters()
        try:
            return exporters.export_segments(self.path, self.outputs, self.volume, fmt=self.fmt,
                                             overwrite=self.overwrite)
        except (ValueError, FileExistsError) as error:  # the exporters' one-line user errors
            raise InputError(str(error)) from error

    def start(self) -> Future:
        """``write`` on a thread of its own; the panel's timer polls ``done()``, then ``result()`` (or its error)."""
        future: Future = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self.write())
            except Exception as error:  # noqa: BLE001 - handed to the main thread through the future
                future.set_exception(error)

        threading.Thread(target=run, name="RefSAM3D export", daemon=True).start()
        return future


def prepare_export(path: str | os.PathLike, segmentation_node, volume_node, fmt: str | None = None,
                   segment_ids: list[str] | None = None, overwrite: bool = False,
                   file_for_instance=None) -> PreparedExport:
    """Main thread: check the request and copy the segments, the volume's grid and its DICOM files out of the scene."""
    exporters = backend_exporters()
    mrml.check_volume_node(volume_node)
    if segmentation_node is None:
        raise InputError("select the segmentation to export")
    try:
        fmt = exporters.export_format_for(path, fmt)
    except ValueError as error:
        raise InputError(str(error)) from error
    existing = existing_outputs(path, fmt)
    if existing and not overwrite:
        raise InputError(f"{existing[0]} exists; choose another name or confirm replacing it")
    if fmt == "dicom-seg":
        from .dependencies import dicomseg_missing, installed_version

        missing = dicomseg_missing()
        if missing:
            raise DicomSegSupportMissing(
                f"DICOM-SEG export needs {', '.join(missing)} (this Python has pydicom "
                f"{installed_version('pydicom') or 'none'}); install DICOM-SEG support (upgrades pydicom, then "
                "restart Slicer) or export as .seg.nrrd")
    volume = mrml.volume_from_node(volume_node)
    if fmt == "dicom-seg":
        volume.dicom_files = dicom_source_files(volume_node, file_for_instance)
    outputs = segment_outputs(segmentation_node, volume_node, segment_ids)
    return PreparedExport(Path(path), outputs, volume, fmt, overwrite)


def export_segmentation(path: str | os.PathLike, segmentation_node, volume_node, fmt: str | None = None,
                        segment_ids: list[str] | None = None, overwrite: bool = False, file_for_instance=None):
    """Both halves at once (scripts, tests); returns the exporter's ``ExportResult``."""
    return prepare_export(path, segmentation_node, volume_node, fmt, segment_ids, overwrite,
                          file_for_instance).write()
