"""The registry-data step (datasets/fetch_registry_data.py): STL reading, mesh-shell filling, label-name maps,
the generated datalists, and, when `make registry-data` has run, the alignment of the converted labels with their
CTs (mean HU inside each structure, and its contrast with a ring just outside it)."""
import importlib.util
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import ndimage

from RefSAM3DLib.io import meshes
from RefSAM3DLib.training.datalist import load_datalist

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "datasets" / "fetch_registry_data.py"
CONVERTED = REPO / "datasets" / "registry" / "cases"


@pytest.fixture(scope="module")
def registry():
    spec = importlib.util.spec_from_file_location("fetch_registry_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _ball(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape).astype(np.float64)
    return ((grid - np.reshape(centre, (3, 1, 1, 1))) ** 2).sum(axis=0) <= radius ** 2


def _sphere_mesh(shape, centre, radius, rings=48, sectors=96) -> np.ndarray:
    """A UV-sphere triangle mesh whose vertices are the true ball's own boundary voxels (integer indices), the
    way the sonogym meshes are built on their label's outer shell."""
    ball = _ball(shape, centre, radius)
    # the image border is not a surface: a ball cut by it gives a mesh open there, like a CT's cut femur
    boundary = np.argwhere(ball & ~ndimage.binary_erosion(ball, border_value=1)).astype(np.float64)
    theta = np.linspace(0, np.pi, rings + 1)
    phi = np.linspace(0, 2 * np.pi, sectors, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    points = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1) * radius + centre
    flat = points.reshape(-1, 3)
    nearest = np.argmin(((flat[:, None, :] - boundary[None]) ** 2).sum(axis=2), axis=1)
    snapped = boundary[nearest].reshape(points.shape)
    triangles = []
    for i in range(rings):
        for j in range(sectors):
            a, b = snapped[i, j], snapped[i, (j + 1) % sectors]
            c, d = snapped[i + 1, j], snapped[i + 1, (j + 1) % sectors]
            triangles += [(a, c, b), (b, c, d)]
    triangles = np.asarray(triangles, dtype=np.float64)
    # like the real meshes, only neighbouring voxels are joined: this drops the chords that the part of the
    # sphere outside the image (snapped onto the rim) would draw across the cut
    longest = np.linalg.norm(triangles[:, [1, 2, 0]] - triangles, axis=2).max(axis=1)
    return triangles[longest <= np.sqrt(3) + 1e-6]


def _dice(a, b) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_a_sphere_shell_fills_to_the_ball(registry):
    shape, centre, radius = (40, 40, 40), (20, 19, 21), 12
    result = meshes.mesh_to_mask(_sphere_mesh(shape, centre, radius), shape)
    truth = _ball(shape, centre, radius)
    assert result.radius <= 1 and result.sealed_gain > 1.0
    assert _dice(result.mask, truth) > 0.95


def test_a_shell_with_a_gap_is_closed_before_filling(registry):
    shape, centre, radius = (40, 40, 40), (20, 20, 20), 12
    triangles = _sphere_mesh(shape, centre, radius)
    hole = np.linalg.norm(triangles.mean(axis=1) - (20, 20, 32), axis=1) < 2.5  # a ~4-voxel hole at the top
    assert hole.any()
    result = meshes.mesh_to_mask(triangles[~hole], shape)
    assert result.radius >= 1
    assert _dice(result.mask, _ball(shape, centre, radius)) > 0.95


def test_a_shell_cut_by_the_image_border_is_capped(registry):
    shape, centre, radius = (40, 40, 30), (20, 20, 4), 12  # the ball leaves the image below z = 0
    triangles = _sphere_mesh(shape, centre, radius)  # open at z = 0
    truth = _ball(shape, centre, radius)
    assert _dice(meshes.fill_shell(meshes.rasterise_triangles(triangles, shape)).mask, truth) < 0.8  # uncapped
    assert _dice(meshes.mesh_to_mask(triangles, shape).mask, truth) > 0.95


def test_a_tunnel_stays_open(registry):
    """A 3D fill, not slice by slice: a tube open at both ends (a vertebral canal) is not filled."""
    shell = np.zeros((30, 30, 30), dtype=bool)
    grid = np.indices((30, 30)).astype(float)
    ring = np.abs(np.hypot(grid[0] - 15, grid[1] - 15) - 8) < 0.8
    shell[:, :, 5:25] = ring[:, :, None]
    result = meshes.fill_shell(shell)
    assert not result.mask[15, 15, 15] and result.mask.sum() == shell.sum()


def _binary_stl(path, triangles):
    with open(path, "wb") as handle:
        handle.write(b"solid looks-ascii-but-is-binary".ljust(80, b" "))
        handle.write(struct.pack("<I", len(triangles)))
        for triangle in triangles:
            handle.write(struct.pack("<3f", 0, 0, 1) + struct.pack("<9f", *np.ravel(triangle)) + b"\0\0")


def test_stl_reader_binary_and_ascii(registry, tmp_path):
    triangles = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[1, 1, 2], [3, 1, 2], [1, 4, 2.5]]], dtype=float)
    _binary_stl(tmp_path / "b.stl", triangles)
    facets = "".join("facet normal 0 0 1\n outer loop\n" + "".join(f"  vertex {x} {y} {z}\n" for x, y, z in t)
                     + " endloop\nendfacet\n" for t in triangles)
    (tmp_path / "a.stl").write_text(f"solid tiny\n{facets}endsolid tiny\n")
    np.testing.assert_allclose(meshes.read_stl(tmp_path / "b.stl"), triangles)
    np.testing.assert_allclose(meshes.read_stl(tmp_path / "a.stl"), triangles)
    (tmp_path / "bad.stl").write_bytes(b"\x00" * 90)
    with pytest.raises(meshes.MeshError, match="neither a binary STL"):
        meshes.read_stl(tmp_path / "bad.stl")


def test_structures_csv_name_map(registry):
    text = "group,original_idx,structure,id\norgans,1,spleen,1\norgans,5,liver,5\nribs,1,rib_left_1,92\n"
    assert registry.names_from_structures_csv(text) == {1: "spleen", 5: "liver", 92: "rib_left_1"}
    with pytest.raises(registry.RegistryDataError, match="used twice"):
        registry.names_from_structures_csv(text + "organs,2,kidney_right,5\n")
    with pytest.raises(registry.RegistryDataError, match="columns"):
        registry.names_from_structures_csv("name,value\nliver,1\n")


def test_segmentation_to_label_map(registry):
    voxels = np.zeros((4, 5, 6), dtype=np.uint8)
    voxels[0, :2] = 3
    voxels[2:, 3:] = 1
    segmentation = {"voxels": voxels, "segments": [
        {"id": "Segment_1", "labelValue": 3, "layer": 0, "name": "right lung"},
        {"id": "Segment_2", "labelValue": 1, "layer": 0, "name": "ribs"}]}
    labels, names = registry.labelmap_from_segmentation(segmentation)
    assert names == {1: "right lung", 2: "ribs"}
    assert (labels == 1).sum() == (voxels == 3).sum() and (labels == 2).sum() == (voxels == 1).sum()
    layered = {"voxels": np.stack([voxels == 3, voxels == 1]).astype(np.uint8), "segments": [
        {"id": "a", "labelValue": 1, "layer": 0, "name": "right lung"},
        {"id": "b", "labelValue": 1, "layer": 1, "name": "ribs"}]}
    labels2, _ = registry.labelmap_from_segmentation(layered)
    np.testing.assert_array_equal(labels2, labels)


def test_forbidden_sources_are_refused(registry, tmp_path):
    forbidden = registry.Package("sonogym-reconstruction-data-shard-000", "0.1.0", "x.whl", "0" * 64, "")
    with pytest.raises(registry.RegistryDataError, match="blind evaluation"):
        registry.fetch_package(forbidden, tmp_path)
    assert registry._is_forbidden_member("pkg/assets/selected_dataset_stl/s0024/liver.stl")
    assert not registry._is_forbidden_member("pkg/assets/selected_dataset_stl/s0028/trachea.stl")


def _write_case(folder: Path, labels: dict, partial=False, names_file=False, exhaustive=False) -> dict:
    import nibabel as nib

    folder.mkdir(parents=True)
    label = np.zeros((4, 4, 4), dtype=np.uint8)
    for value in labels:
        label[value % 4, :, value // 4 % 4] = value
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), str(folder / "ct.nii.gz"))
    nib.save(nib.Nifti1Image(label, np.eye(4)), str(folder / "label.nii.gz"))
    (folder / "labels.json").write_text(json.dumps({str(k): v for k, v in labels.items()}))
    meta = {"id": folder.name, "modality": "CT", "regions": ["chest"], "split": "train", "exhaustive": exhaustive,
            "partial": partial, "label_file_names": names_file}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def test_generated_datalists_load(registry, tmp_path):
    cases = tmp_path / "registry" / "cases"
    _write_case(cases / "full", {1: "liver", 2: "spleen"}, names_file=True, exhaustive=True)
    _write_case(cases / "bones", {1: "rib_left_1", 2: "trachea"}, partial=True)
    shared_root = tmp_path / "elsewhere" / "data"
    _write_case(shared_root / "s1", {1: "liver"})
    datalists = tmp_path / "datasets"
    datalists.mkdir()
    shared = {"name": "shared", "root": "../elsewhere/data", "cases": [
        {"id": "shared1", "image": "s1/ct.nii.gz", "label": "s1/label.nii.gz", "label_names": "s1/labels.json",
         "split": "val"}]}
    (datalists / "shared.yaml").write_text(yaml.safe_dump(shared))
    written = registry.write_datalists(cases, ["full", "bones"], datalists, datalists / "shared.yaml")
    assert [p.name for p in written] == ["registry_data.yaml", "lite_training.yaml"]
    reg = load_datalist(datalists / "registry_data.yaml")
    by_id = {c.id: c for c in reg.cases}
    assert by_id["full"].exhaustive and not by_id["full"].partial and not by_id["full"].explicit
    assert by_id["bones"].partial and by_id["bones"].explicit and by_id["bones"].label_map == {1: "rib_left_1",
                                                                                               2: "trachea"}
    lite = load_datalist(datalists / "lite_training.yaml")
    assert [c.id for c in lite.cases] == ["shared1", "full", "bones"]
    assert lite.cases[0].split == "val" and lite.cases[0].image.resolve() == (shared_root / "s1" / "ct.nii.gz")
    assert all(c.image.is_file() and c.label.is_file() for c in lite.cases)


def test_partial_flag_defaults_to_false(tmp_path):
    import nibabel as nib

    for name in ("ct", "lab"):
        nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)), str(tmp_path / f"{name}.nii.gz"))
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"cases": [
        {"id": "a", "image": "ct.nii.gz", "label": "lab.nii.gz", "labels": {1: "rib_left_1"}, "partial": True},
        {"id": "b", "image": "ct.nii.gz", "label": "lab.nii.gz", "labels": {1: "liver"}}]}))
    cases = load_datalist(tmp_path / "d.yaml").cases
    assert cases[0].partial is True and cases[1].partial is False


# --- on the real converted data (after `make registry-data`) ---------------------------------------------------

BONE_DENSE = ("vertebrae_", "femur", "hip_", "sacrum")
BONE_THIN = ("rib_", "humerus", "clavicula", "scapula", "sternum")  # thin cortex or marrow-rich: lower means
MUSCLE = ("autochthon", "gluteus", "iliopsoas")
AIRWAY = ("trachea",)


def _expected(name: str):
    """(low, high) mean HU inside, and the sign the inside-minus-ring contrast must have (0: not checked)."""
    if name.startswith(BONE_DENSE):
        return (200, 1500), +1
    if name.startswith(BONE_THIN):
        return (100, 1500), +1
    if name.startswith(MUSCLE):
        return (20, 80), 0
    if name.startswith(AIRWAY):
        return (-1024, -500), -1
    return (-200, 500), 0


@pytest.mark.skipif(not CONVERTED.is_dir() or not any(CONVERTED.glob("sonogym_*/label.nii.gz")),
                    reason="converted registry data absent: run `make registry-data`")
def test_converted_mesh_labels_align_with_their_ct():
    import nibabel as nib

    checked = 0
    for folder in sorted(CONVERTED.glob("sonogym_*")):
        ct = np.asanyarray(nib.load(str(folder / "ct.nii.gz")).dataobj)
        labels = np.asanyarray(nib.load(str(folder / "label.nii.gz")).dataobj)
        assert ct.shape == labels.shape
        boxes = ndimage.find_objects(labels)
        for value, name in json.loads((folder / "labels.json").read_text()).items():
            found = boxes[int(value) - 1] if int(value) <= len(boxes) else None
            assert found is not None, f"{folder.name}/{name}: no voxels"
            box = tuple(slice(max(b.start - 3, 0), b.stop + 3) for b in found)
            mask, image, others = labels[box] == int(value), ct[box].astype(np.float32), labels[box]
            assert mask.sum() > 500, f"{folder.name}/{name}: only {mask.sum()} voxels"
            inside = float(image[mask].mean())
            ring = ndimage.binary_dilation(mask, iterations=2) & ~mask & (others == 0)
            outside = float(image[ring].mean())
            (low, high), sign = _expected(name)
            assert low <= inside <= high, f"{folder.name}/{name}: mean {inside:.0f} HU outside [{low}, {high}]"
            if sign:
                assert sign * (inside - outside) > 50, \
                    f"{folder.name}/{name}: inside {inside:.0f} HU vs ring {outside:.0f} HU: no contrast, misaligned?"
            checked += 1
    assert checked > 0
