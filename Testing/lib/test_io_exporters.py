"""export_segments picks the writer from fmt or the file name and reports everything it wrote."""
from __future__ import annotations

import nibabel as nib
import pytest
import slicerio
from dicom_series import write_ct_series

from RefSAM3DLib.io.exporters import export_format_for, export_segments
from RefSAM3DLib.io.readers import read_volume


@pytest.fixture(scope="module")
def ct_volume(tmp_path_factory):
    series = write_ct_series(tmp_path_factory.mktemp("ct"), columns=20, rows=18, slices=12)
    return read_volume(series.folder)


@pytest.mark.parametrize("name, fmt, expected", [
    ("a.nii.gz", None, "nifti"), ("a.NII", None, "nifti"), ("a.seg.nrrd", None, "seg.nrrd"),
    ("a.dcm", None, "dicom-seg"), ("out", "nifti", "nifti"), ("out", "SEG.NRRD", "seg.nrrd"),
    ("out", "dicom-seg", "dicom-seg"), ("out.nii.gz", "dicom-seg", "dicom-seg"),
])
def test_format_from_name_or_fmt(name, fmt, expected):
    assert export_format_for(name, fmt) == expected


@pytest.mark.parametrize("name, fmt", [("labels.nrrd", None), ("labels.png", None), ("labels.nii.gz", "stl")])
def test_unknown_format_names_the_accepted_ones(name, fmt):
    with pytest.raises(ValueError) as error:
        export_format_for(name, fmt)
    message = str(error.value)
    assert message.startswith(f"{name}: ") and "nifti, seg.nrrd, dicom-seg" in message and "\n" not in message


def test_every_format_is_written(tmp_path, ct_volume, make_segments):
    segments = make_segments(ct_volume.array.shape)
    nifti = export_segments(tmp_path / "labels.nii.gz", segments, ct_volume)
    assert nifti.format == "nifti" and nifti.paths == [tmp_path / "labels.nii.gz", tmp_path / "labels.json"]
    assert nib.load(nifti.paths[0]).shape == ct_volume.array.shape

    seg_nrrd = export_segments(tmp_path / "labels.seg.nrrd", segments, ct_volume)
    assert seg_nrrd.skipped_segments == []
    assert len(slicerio.read_segmentation(str(seg_nrrd.paths[0]))["segments"]) == len(segments)

    dicom = export_segments(tmp_path / "labels.dcm", segments, ct_volume)
    assert dicom.format == "dicom-seg" and dicom.skipped_segments == ["spleen"]

    with pytest.raises(FileExistsError):
        export_segments(tmp_path / "labels.dcm", segments, ct_volume)
    assert export_segments(tmp_path / "labels.dcm", segments, ct_volume, overwrite=True).paths[0].is_file()
