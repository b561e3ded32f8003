"""The NIfTI label map lands on the exact input grid, and its sidecar says what every label value means."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from RefSAM3DLib.io.errors import ExportError, OutputExistsError
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.nifti_export import write_nifti_labelmap
from RefSAM3DLib.io.readers import read_label_volume

OBLIQUE = VolumeGeometry.from_spacing((20, 18, 12), spacing=(0.8, 0.9, 2.5), origin=(-40.0, 12.5, 88.0),
                                      direction=Rotation.from_euler("xz", [10, 20], degrees=True).as_matrix()
                                      @ np.diag([-1.0, 1.0, 1.0]))


def test_label_map_geometry_values_and_overlap(tmp_path, make_segments):
    segments = make_segments(OBLIQUE.shape)
    image_path, sidecar_path = write_nifti_labelmap(tmp_path / "result.nii.gz", segments, OBLIQUE)
    assert sidecar_path == tmp_path / "result.json"
    image = nib.load(image_path)
    np.testing.assert_allclose(image.affine, OBLIQUE.affine, atol=1e-4)
    for get_form in (image.header.get_qform, image.header.get_sform):
        matrix, code = get_form(coded=True)
        assert int(code) == 1
        np.testing.assert_allclose(matrix, OBLIQUE.affine, atol=1e-4)
    labels = np.asanyarray(image.dataobj)
    assert labels.dtype == np.uint8
    liver, kidney, corner, spleen = (s.mask for s in segments)
    expected = np.zeros(OBLIQUE.shape, np.uint8)
    for value, mask in enumerate((liver, kidney, corner, spleen), start=1):
        expected[mask] = value  # later segments win where they overlap
    np.testing.assert_array_equal(labels, expected)
    assert np.any(liver & kidney) and np.all(labels[liver & kidney] == 2)
    # and our own reader agrees voxel for voxel and on the grid
    reread = read_label_volume(image_path)
    assert reread.geometry.same_grid(OBLIQUE, atol_mm=1e-3)
    np.testing.assert_array_equal(reread.array, expected)


def test_sidecar_describes_every_label(tmp_path, make_segments):
    segments = make_segments(OBLIQUE.shape)
    _, sidecar_path = write_nifti_labelmap(tmp_path / "result.nii", segments, OBLIQUE)
    sidecar = json.loads(sidecar_path.read_text())
    assert sidecar["algorithm"]["name"] == "RefSAM3D" and sidecar["algorithm"]["version"]
    assert list(sidecar["labels"]) == ["1", "2", "3", "4"]
    liver, kidney, _, spleen = (sidecar["labels"][k] for k in ("1", "2", "3", "4"))
    assert liver["name"] == "liver" and liver["prompt"] == "liver" and liver["concept_id"] == "liver"
    assert liver["color"] == [0.87, 0.51, 0.39] and liver["color_255"] == [222, 130, 99]
    assert liver["terminology"]["type"] == {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}
    assert liver["terminology"]["modifier"] is None and liver["algorithm_type"] == "AUTOMATIC"
    assert kidney["terminology"]["modifier"] == {"value": "7771000", "scheme": "SCT", "meaning": "Left"}
    voxels = int(segments[0].mask.sum())
    assert liver["voxels"] == voxels
    assert liver["volume_ml"] == pytest.approx(voxels * OBLIQUE.voxel_volume_ml, rel=1e-6)
    shared = int((segments[0].mask & segments[1].mask).sum())
    assert liver["voxels_in_label_map"] == voxels - shared
    assert sidecar["overlaps"] == [{"labels": [1, 2], "names": ["liver", "left kidney"], "voxels": shared, "winner": 2}]
    assert spleen["found"] is False and spleen["voxels"] == 0 and spleen["volume_ml"] == 0.0
    assert spleen["presence"] == pytest.approx(0.02)


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, make_segments):
    segments = make_segments(OBLIQUE.shape)
    (tmp_path / "result.json").write_text("mine")
    with pytest.raises(OutputExistsError):
        write_nifti_labelmap(tmp_path / "result.nii.gz", segments, OBLIQUE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # nothing half-written
    write_nifti_labelmap(tmp_path / "result.nii.gz", segments, OBLIQUE, overwrite=True)
    assert json.loads((tmp_path / "result.json").read_text())["labels"]["1"]["name"] == "liver"


def test_many_segments_use_uint16(tmp_path, make_segments):
    template = make_segments(OBLIQUE.shape)[2]
    segments = [template] * 300
    path, _ = write_nifti_labelmap(tmp_path / "many.nii.gz", segments, OBLIQUE)
    labels = np.asanyarray(nib.load(path).dataobj)
    assert labels.dtype == np.uint16 and labels.max() == 300


def test_mask_on_another_grid_is_refused(tmp_path, make_segments):
    segments = make_segments((5, 5, 5))
    with pytest.raises(ExportError, match=r"mask shape \(5, 5, 5\) is not the volume grid"):
        write_nifti_labelmap(tmp_path / "x.nii.gz", segments, OBLIQUE)
    assert list(tmp_path.iterdir()) == []
