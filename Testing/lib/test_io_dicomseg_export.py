"""DICOM-SEG output must pass dciodvfy and put every mask voxel on the right source instance."""
from __future__ import annotations

import shutil
import subprocess

import highdicom as hd
import numpy as np
import pytest
from dicom_series import read_hounsfield, rotation_about_z, write_ct_series

from RefSAM3DLib.io.dicomseg_export import write_dicom_seg
from RefSAM3DLib.io.errors import ExportError
from RefSAM3DLib.io.readers import read_volume


@pytest.fixture(scope="module", params=[None, 20.0], ids=["axial", "oblique20"])
def ct_volume(request, tmp_path_factory):
    rotation = None if request.param is None else rotation_about_z(request.param)
    series = write_ct_series(tmp_path_factory.mktemp("ct"), rotation=rotation)
    return read_volume(series.folder)


def _dciodvfy_errors(path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; `make test` installs it with apt")
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]


def test_source_ct_series_is_a_valid_ct_image(ct_volume):
    assert _dciodvfy_errors(ct_volume.dicom_files[0]) == []


def test_volume_slices_are_the_source_instances(ct_volume):
    """The mapping the exporter relies on: volume[:, :, k].T is the pixel data of dicom_files[k]."""
    for k in (0, 17, ct_volume.array.shape[2] - 1):
        np.testing.assert_array_equal(read_hounsfield(ct_volume.dicom_files[k]), ct_volume.array[:, :, k].T)


def test_seg_is_valid_and_maps_voxels_to_source_instances(tmp_path, ct_volume, make_segments):
    segments = make_segments(ct_volume.array.shape)
    path, skipped = write_dicom_seg(tmp_path / "seg.dcm", segments, ct_volume)
    assert skipped == ["spleen"]  # "not found": empty masks are left out of the SEG and reported
    assert _dciodvfy_errors(path) == []

    seg = hd.seg.segread(path)
    kept = [s for s in segments if s.mask.any()]
    assert seg.number_of_segments == len(kept)
    assert str(seg.ContentCreatorName) == "RefSAM3D^Model"
    for number, segment in enumerate(kept, start=1):
        description = seg.get_segment_description(number)
        assert description.segment_label == segment.name
        assert description.segmented_property_type.value == segment.terminology.type.value
        assert description.segmented_property_category.value == segment.terminology.category.value
        assert description.algorithm_type.value == segment.algorithm_type
        algorithm = description.algorithm_identification[0]
        assert algorithm.AlgorithmName == "RefSAM3D" and algorithm.AlgorithmVersion
        assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
        modifiers = description.SegmentedPropertyTypeCodeSequence[0].get("SegmentedPropertyTypeModifierCodeSequence")
        if segment.terminology.modifier is None:
            assert modifiers is None
        else:
            assert modifiers[0].CodeValue == segment.terminology.modifier.value

    uids = [hd.imread(name, lazy_frame_retrieval=True).SOPInstanceUID for name in ct_volume.dicom_files]
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=list(range(1, len(kept) + 1)),
                                               assert_missing_frames_are_empty=True)
    # pixels: (instances, rows, columns, segments); the volume is (columns, rows, instances)
    for index, segment in enumerate(kept):
        np.testing.assert_array_equal(pixels[..., index].astype(bool), segment.mask.transpose(2, 1, 0))


def test_edge_touching_mask_survives(tmp_path, ct_volume, make_segments):
    corner = make_segments(ct_volume.array.shape)[2]
    assert corner.mask[-1].any() and corner.mask[:, 0].any() and corner.mask[..., 0].any()
    path, _ = write_dicom_seg(tmp_path / "corner.dcm", [corner], ct_volume)
    seg = hd.seg.segread(path)
    uids = [hd.imread(name, lazy_frame_retrieval=True).SOPInstanceUID for name in ct_volume.dicom_files]
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[1], assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pixels[..., 0].astype(bool), corner.mask.transpose(2, 1, 0))


def test_non_dicom_volume_is_refused(tmp_path, ct_volume, make_segments):
    from RefSAM3DLib.io.volume import Volume

    nifti_like = Volume(ct_volume.array, ct_volume.geometry, modality="CT", source="ct.nii.gz")
    with pytest.raises(ExportError) as error:
        write_dicom_seg(tmp_path / "seg.dcm", make_segments(ct_volume.array.shape), nifti_like)
    assert "needs a volume read from a DICOM series" in str(error.value) and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_all_empty_is_refused(tmp_path, ct_volume, make_segments):
    spleen = make_segments(ct_volume.array.shape)[3]
    with pytest.raises(ExportError, match="every segment is empty"):
        write_dicom_seg(tmp_path / "seg.dcm", [spleen], ct_volume)
