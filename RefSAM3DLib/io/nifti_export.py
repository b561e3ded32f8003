"""NIfTI label map plus a JSON sidecar: the format any pipeline can read, with names and codes kept alongside.

A label map holds one value per voxel, so overlapping segments cannot all survive: the later segment wins
(prompt order), and the sidecar says how many voxels each overlap cost so nobody is silently misled.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from ..vocab.codes import Code, Terminology
from .atomic import atomic_output, check_writable
from .errors import ExportError
from .geometry import VolumeGeometry
from .output_names import check_output_name
from .provenance import ALGORITHM_NAME, refsam3d_version
from .segments import SegmentOutput

NIFTI_XFORM_SCANNER_ANAT = 1


def sidecar_path_for(path: str | os.PathLike) -> Path:
    """'liver.nii.gz' -> 'liver.json' (the label map's stem, next to it)."""
    path = Path(path)
    name = path.name
    for extension in (".nii.gz", ".nii"):
        if name.lower().endswith(extension):
            return path.with_name(name[: -len(extension)] + ".json")
    return path.with_name(name + ".json")


def write_nifti_labelmap(path: str | os.PathLike, segments: Sequence[SegmentOutput], geometry: VolumeGeometry,
                         overwrite: bool = False) -> tuple[Path, Path]:
    """Write label value = segment index + 1 on the exact input grid, and the ``<stem>.json`` sidecar."""
    path = check_output_name(path, "nifti")
    sidecar = sidecar_path_for(path)
    check_writable(path, overwrite)
    check_writable(sidecar, overwrite)
    labels, overlaps = build_label_map(segments, geometry)
    image = nib.Nifti1Image(labels, geometry.affine)
    image.set_qform(geometry.affine, code=NIFTI_XFORM_SCANNER_ANAT)
    image.set_sform(geometry.affine, code=NIFTI_XFORM_SCANNER_ANAT)
    image.header.set_xyzt_units(xyz="mm")
    image.header["descrip"] = f"{ALGORITHM_NAME} {refsam3d_version()} labels"[:79].encode()
    description = sidecar_contents(segments, geometry, labels, overlaps, path.name)
    with atomic_output(path, overwrite) as temporary_image, atomic_output(sidecar, overwrite) as temporary_json:
        nib.save(image, temporary_image)
        temporary_json.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return path, sidecar


def build_label_map(segments: Sequence[SegmentOutput], geometry: VolumeGeometry) -> tuple[np.ndarray, list[dict]]:
    """Paint segments in order (later wins) and count the voxels each pair of segments shares."""
    dtype = np.uint8 if len(segments) <= np.iinfo(np.uint8).max else np.uint16
    if len(segments) > np.iinfo(np.uint16).max:
        raise ExportError("label map", f"{len(segments)} segments do not fit a uint16 label map", "export fewer segments")
    labels = np.zeros(geometry.shape, dtype=dtype)
    overlaps = []
    for index, segment in enumerate(segments):
        mask = _checked_mask(segment, geometry)
        covered = labels[mask]
        for earlier_label in np.unique(covered[covered > 0]):
            overlaps.append({"labels": [int(earlier_label), index + 1],
                             "names": [segments[int(earlier_label) - 1].name, segment.name],
                             "voxels": int(np.count_nonzero(covered == earlier_label)),
                             "winner": index + 1})
        labels[mask] = index + 1
    return labels, overlaps


def sidecar_contents(segments: Sequence[SegmentOutput], geometry: VolumeGeometry, labels: np.ndarray,
                     overlaps: list[dict], image_name: str) -> dict:
    voxel_ml = geometry.voxel_volume_ml
    entries = {}
    for index, segment in enumerate(segments):
        mask_voxels = int(np.count_nonzero(segment.mask))
        entries[str(index + 1)] = {
            "name": segment.name,
            "prompt": segment.prompt,
            "concept_id": segment.concept_id,
            "found": bool(segment.found),
            "presence": None if segment.presence is None else float(segment.presence),
            "voxels": mask_voxels,
            "voxels_in_label_map": int(np.count_nonzero(labels == index + 1)),
            "volume_ml": round(mask_voxels * voxel_ml, 6),
            "color": [float(c) for c in segment.color],
            "color_255": [round(float(c) * 255) for c in segment.color],
            "terminology": terminology_dict(segment.terminology),
            "algorithm_type": segment.algorithm_type,
            "algorithm_name": ALGORITHM_NAME,
        }
    return {
        "label_map": image_name,
        "algorithm": {"name": ALGORITHM_NAME, "version": refsam3d_version(), "family": "Artificial Intelligence"},
        "geometry": {"shape": list(geometry.shape), "spacing_mm": [float(s) for s in geometry.spacing],
                     "ijk_to_ras": geometry.affine.tolist(), "axis_codes": geometry.axis_codes},
        "overlap_rule": "where segments overlap, the later label value wins",
        "overlaps": overlaps,
        "labels": entries,
    }


def terminology_dict(terminology: Terminology) -> dict:
    return {"category": _code_dict(terminology.category), "type": _code_dict(terminology.type),
            "modifier": _code_dict(terminology.modifier), "anatomic_region": _code_dict(terminology.anatomic_region),
            "anatomic_region_modifier": _code_dict(terminology.anatomic_region_modifier)}


def _code_dict(code: Code | None) -> dict | None:
    return None if code is None else {"value": code.value, "scheme": code.scheme, "meaning": code.meaning}


def _checked_mask(segment: SegmentOutput, geometry: VolumeGeometry) -> np.ndarray:
    mask = np.asarray(segment.mask)
    if mask.shape != tuple(geometry.shape):
        raise ExportError(segment.name, f"mask shape {mask.shape} is not the volume grid {tuple(geometry.shape)}",
                          "export masks on the input volume's grid")
    return mask.astype(bool, copy=False)
