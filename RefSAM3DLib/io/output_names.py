"""The file names each export format needs, checked in one place by the writers and, earlier, by the CLI.

A NIfTI label map must end in .nii or .nii.gz (nibabel picks compression from it) and a Slicer segmentation
in .seg.nrrd (Slicer recognises it by that); a DICOM-SEG may have any name.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ExportError

REQUIRED_ENDINGS = {"nifti": (".nii", ".nii.gz"), "seg.nrrd": (".seg.nrrd",)}
_WHAT = {"nifti": "a NIfTI label map", "seg.nrrd": "a Slicer segmentation"}


def check_output_name(path: str | os.PathLike, fmt: str) -> Path:
    """Raise ``ExportError`` if ``path`` cannot hold format ``fmt``; return it as a Path."""
    path = Path(path)
    endings = REQUIRED_ENDINGS.get(fmt)
    if endings and not path.name.lower().endswith(endings):
        raise ExportError(path, f"{_WHAT[fmt]} needs a {' or '.join(endings)} file name",
                          f"rename the output (e.g. {path.name.split('.')[0] or 'seg'}{endings[-1]})")
    return path
