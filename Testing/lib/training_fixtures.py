"""A small real training set for CPU tests: a crop of the shared abdomen CT with three organs."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import yaml

CT = "totalsegmentator/ts_p1_ct_abdomen_3mm/ct.nii.gz"
SEG = "totalsegmentator/ts_p1_ct_abdomen_3mm/seg_total_v1.nii.gz"


def write_small_dataset(shared: Path, folder: Path) -> Path:
    """Crop around liver/spleen/left kidney (60 x 50 x 30 voxels of 3 mm) and write a datalist."""
    folder.mkdir(parents=True, exist_ok=True)
    ct, seg = nib.load(shared / CT), nib.load(shared / SEG)
    labels = np.asarray(seg.dataobj).astype(np.int16)
    box = (slice(30, 90), slice(30, 80), slice(70, 100))
    offset = np.asarray([b.start for b in box])
    affine = ct.affine.copy()
    affine[:3, 3] = nib.affines.apply_affine(ct.affine, offset)
    keep = np.isin(labels, [1, 3, 5])
    cropped = np.where(keep, labels, 0)[box]
    nib.save(nib.Nifti1Image(np.asarray(ct.dataobj)[box].astype(np.int16), affine), folder / "ct.nii.gz")
    nib.save(nib.Nifti1Image(cropped.astype(np.uint8), affine), folder / "seg.nii.gz")
    datalist = {"name": "small", "root": ".", "cases": [
        {"id": "p1_crop", "image": "ct.nii.gz", "label": "seg.nii.gz", "modality": "CT",
         "labels": {1: "spleen", 3: "kidney_left", 5: "liver"}, "regions": ["abdomen"], "split": "train"},
        {"id": "p1_crop_val", "image": "ct.nii.gz", "label": "seg.nii.gz", "modality": "CT",
         "labels": {1: "spleen", 3: "kidney_left", 5: "liver"}, "regions": ["abdomen"], "split": "val"}]}
    path = folder / "datalist.yaml"
    path.write_text(yaml.safe_dump(datalist))
    return path
