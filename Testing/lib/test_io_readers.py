"""read_volume must give every format the exact geometry and voxels that the format's reference library gives."""
from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
from dicom_series import rotation_about_z, write_ct_series

from RefSAM3DLib.io.errors import VolumeReadError
from RefSAM3DLib.io.geometry import LPS_FROM_RAS
from RefSAM3DLib.io.readers import read_label_volume, read_volume

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SHARED_NIFTI = sorted(SHARED.rglob("*.nii.gz")) if SHARED.is_dir() else []
SHARED_NRRD = sorted((SHARED / "pyradiomics").glob("*.nrrd")) if SHARED.is_dir() else []
NO_SHARED = pytest.mark.skip(reason="shared test data (../shared/data next to the repository) is not available")


def _shared_params(files):
    if not files:
        return [pytest.param(None, marks=NO_SHARED)]
    return [pytest.param(f, id=str(f.relative_to(SHARED))) for f in files]


@pytest.mark.parametrize("path", _shared_params(SHARED_NIFTI))
def test_shared_nifti_matches_nibabel(path):
    volume = read_volume(path)
    reference = nib.load(path)
    np.testing.assert_allclose(volume.geometry.affine, reference.affine, atol=1e-4)
    data = np.asanyarray(reference.dataobj)
    assert volume.array.dtype == data.dtype
    np.testing.assert_array_equal(volume.array, data)


@pytest.mark.parametrize("path", _shared_params(SHARED_NRRD))
def test_shared_nrrd_matches_pynrrd(path):
    volume = read_volume(path)
    data, header = nrrd.read(str(path))
    assert header["space"] == "left-posterior-superior"
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = np.asarray(header["space directions"], dtype=float).T  # rows are the i, j, k steps
    affine_lps[:3, 3] = header["space origin"]
    np.testing.assert_allclose(volume.geometry.affine, LPS_FROM_RAS @ affine_lps, atol=1e-4)
    assert volume.array.dtype == data.dtype
    np.testing.assert_array_equal(volume.array, data)


# ------------------------------------------------------------------------ synthetic images written by SimpleITK
DIRECTIONS_LPS = {
    "LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "oblique20": rotation_about_z(20.0) @ np.diag([1.0, -1.0, 1.0]),
}


def _sitk_image(array_ijk: np.ndarray, direction_lps: np.ndarray, spacing=(0.7, 1.1, 2.5),
                origin=(-12.5, 30.25, 101.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_ijk.transpose(2, 1, 0)))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction_lps.ravel().tolist())
    return image


def _expected_ras(direction_lps, spacing=(0.7, 1.1, 2.5), origin=(-12.5, 30.25, 101.0)) -> np.ndarray:
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction_lps * np.asarray(spacing)
    affine_lps[:3, 3] = origin
    return LPS_FROM_RAS @ affine_lps


@pytest.mark.parametrize("orientation", list(DIRECTIONS_LPS))
@pytest.mark.parametrize("extension", [".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"])
def test_orientation_round_trip_is_exact(tmp_path, orientation, extension):
    rng = np.random.default_rng(3)
    array = rng.integers(-1000, 2000, size=(9, 7, 5)).astype(np.int16)  # distinct sizes catch axis swaps
    path = tmp_path / f"image{extension}"
    sitk.WriteImage(_sitk_image(array, DIRECTIONS_LPS[orientation]), str(path))
    volume = read_volume(path)
    atol = 1e-4 if extension == ".nii.gz" else 1e-9  # NIfTI stores float32 matrices
    np.testing.assert_allclose(volume.geometry.affine, _expected_ras(DIRECTIONS_LPS[orientation]), atol=atol)
    np.testing.assert_array_equal(volume.array, array)
    assert volume.array.dtype == np.int16
    assert volume.geometry.shape == (9, 7, 5)
    voxel = np.array([[8, 0, 4]])  # a voxel's RAS position must be where ITK says it is (after LPS->RAS)
    itk_lps = np.array(sitk.ReadImage(str(path)).TransformIndexToPhysicalPoint([8, 0, 4]))
    np.testing.assert_allclose(volume.geometry.ijk_to_ras(voxel)[0], itk_lps * [-1, -1, 1], atol=1e-3)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64])
def test_native_dtype_is_kept(tmp_path, dtype):
    array = (np.arange(4 * 5 * 6).reshape(4, 5, 6) % 200).astype(dtype)
    path = tmp_path / "image.nrrd"
    sitk.WriteImage(_sitk_image(array, np.eye(3)), str(path))
    volume = read_volume(path, modality="MR")
    assert volume.array.dtype == dtype
    np.testing.assert_array_equal(volume.array, array)
    assert volume.modality == "MR" and volume.source == str(path)


def _four_d_file(tmp_path: Path, frames: int) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(0).normal(size=(6, 5, 4, frames)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    path = tmp_path / "dynamic.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    return path, data


def test_4d_without_frame_explains_how_to_choose(tmp_path):
    path, _ = _four_d_file(tmp_path, 3)
    with pytest.raises(VolumeReadError) as error:
        read_volume(path)
    assert str(error.value) == f"{path}: 4D image with 3 frames; pass frame=K (0..2) to use one frame"


def test_4d_frame_is_selected_with_its_geometry(tmp_path):
    path, data = _four_d_file(tmp_path, 3)
    volume = read_volume(path, frame=2)
    np.testing.assert_array_equal(volume.array, data[..., 2])
    np.testing.assert_allclose(volume.geometry.affine, nib.load(path).affine, atol=1e-5)
    with pytest.raises(VolumeReadError, match="frame 3 does not exist"):
        read_volume(path, frame=3)


def test_vector_image_components_are_frames(tmp_path):
    components = np.random.default_rng(1).integers(0, 255, size=(5, 6, 7, 3)).astype(np.uint8)
    image = sitk.GetImageFromArray(components.transpose(2, 1, 0, 3), isVector=True)
    path = tmp_path / "rgb.mha"
    sitk.WriteImage(image, str(path))
    with pytest.raises(VolumeReadError, match="4D image with 3 frames"):
        read_volume(path)
    np.testing.assert_array_equal(read_volume(path, frame=1).array, components[..., 1])


def test_2d_image_is_rejected(tmp_path):
    path = tmp_path / "slice.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 9), np.int16)), str(path))
    with pytest.raises(VolumeReadError, match=r"2D image.*needs a 3D volume"):
        read_volume(path)


def test_problems_are_one_line_with_path_problem_and_remedy(tmp_path):
    garbage = tmp_path / "broken.nii.gz"
    garbage.write_bytes(b"this is not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    not_dicom = tmp_path / "notes"
    not_dicom.mkdir()
    (not_dicom / "readme.txt").write_text("hello")
    cases = {tmp_path / "missing.nii.gz": "no such file", garbage: "not a readable image",
             empty: "empty folder", not_dicom: "no DICOM image series"}
    for path, problem in cases.items():
        with pytest.raises(VolumeReadError) as error:
            read_volume(path)
        message = str(error.value)
        assert message.startswith(f"{path}: {problem}") and ";" in message and "\n" not in message
        assert isinstance(error.value, ValueError)


def test_label_volume_is_integer(tmp_path):
    labels = np.zeros((6, 5, 4))
    labels[1:3, 1:4, 2] = 7.0
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), path)  # float64 on disk, like TotalSegmentator's v1 reference
    volume = read_label_volume(path)
    assert volume.array.dtype == np.uint8
    np.testing.assert_array_equal(volume.array, labels.astype(np.uint8))
    nib.save(nib.Nifti1Image(labels + 0.5, np.eye(4)), path)
    with pytest.raises(VolumeReadError, match="not whole numbers"):
        read_label_volume(path)


# ------------------------------------------------------------------------ DICOM series
@pytest.mark.parametrize("rotation", [None, rotation_about_z(20.0)], ids=["axial", "oblique20"])
def test_dicom_series_geometry_voxels_and_slice_order(tmp_path, rotation):
    series = write_ct_series(tmp_path / "ct", rotation=rotation)
    volume = read_volume(series.folder)
    assert volume.modality == "CT"
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, series.hounsfield)
    np.testing.assert_allclose(volume.geometry.affine_lps, series.affine_lps, atol=1e-4)
    assert volume.dicom_files == [str(f) for f in series.files]
    # a single file of the series reads the whole series
    from_file = read_volume(series.files[7])
    np.testing.assert_array_equal(from_file.array, volume.array)
    assert from_file.dicom_files == volume.dicom_files


def test_folder_with_two_series_needs_a_series_uid(tmp_path):
    first = write_ct_series(tmp_path / "a", slices=6, seed=1)
    second = write_ct_series(tmp_path / "b", slices=4, seed=2, origin_lps=(0.0, 0.0, 0.0))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for file in first.files + second.files:
        shutil.copy(file, mixed / f"{file.parent.name}_{file.name}")
    with pytest.raises(VolumeReadError) as error:
        read_volume(mixed)
    message = str(error.value)
    assert f"{first.series_uid} (6 slices)" in message and f"{second.series_uid} (4 slices)" in message
    assert "pass series_uid=" in message and "\n" not in message
    chosen = read_volume(mixed, series_uid=second.series_uid)
    np.testing.assert_array_equal(chosen.array, second.hounsfield)
    with pytest.raises(VolumeReadError, match="no DICOM series 1.2.3"):
        read_volume(mixed, series_uid="1.2.3")
