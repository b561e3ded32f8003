"""DICOM-SEG from series anonymised the way real ones are: blank SOPClassUID (class only in the file meta),
optional patient/study attributes removed, several series in one folder, files named out of slice order.

Each written SEG passes dciodvfy without errors, is read back by highdicom with every frame on the right
source instance, the source files are left byte for byte as they were, and the NIfTI and .seg.nrrd exports
of the same results agree with it voxel for voxel.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess

import highdicom as hd
import malformed_files as mf
import nibabel as nib
import numpy as np
import pydicom
import pytest
import slicerio
from engine_fixtures import tiny_model, tiny_predictor

from RefSAM3DLib.cli import main
from RefSAM3DLib.engine.postprocess import PostProcessing
from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.io.exporters import export_segments
from RefSAM3DLib.io.readers import read_volume
from RefSAM3DLib.modeling.checkpoint import save_checkpoint

LOW_THRESHOLD = ["--threshold", "0.2", "--presence-threshold", "0"]  # random tiny weights: keep some voxels


def _digests(files) -> dict[str, str]:
    return {str(f): hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files}


def _dciodvfy_errors(path) -> list[str]:
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed; `make test` installs it with apt")
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]


def _frames_by_instance(seg_path, volume, segments: int) -> np.ndarray:
    """(columns, rows, slices, segments) read back through the SEG's references to each source instance."""
    seg = hd.seg.segread(seg_path)
    uids = [str(pydicom.dcmread(name, stop_before_pixels=True).SOPInstanceUID) for name in volume.dicom_files]
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=list(range(1, segments + 1)),
                                               assert_missing_frames_are_empty=True)
    return pixels.transpose(2, 1, 0, 3).astype(bool)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("seg-model") / "tiny.pt"
    save_checkpoint(tiny_model(), path)
    return path


def test_anonymised_series_gives_a_valid_seg_from_the_cli(model_file, tmp_path, capsys):
    series = mf.anonymised(tmp_path / "ct")
    assert pydicom.dcmread(series.files[0]).SOPClassUID == ""  # as delivered: only the file meta has the class
    before = _digests(series.files)
    out = tmp_path / "seg.dcm"
    code = main(["segment", "--image", str(series.folder), "--prompt", "liver", "--out", str(out), "--format",
                 "dicom-seg", "--model", str(model_file), "--device", "cpu", "--quiet", *LOW_THRESHOLD])
    assert code == 0, capsys.readouterr().err
    assert _dciodvfy_errors(out) == []
    assert _digests(series.files) == before
    seg = hd.seg.segread(out)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    referenced = {item.ReferencedSOPClassUID for series_item in seg.ReferencedSeriesSequence
                  for item in series_item.ReferencedInstanceSequence}
    assert referenced == {pydicom.uid.CTImageStorage}
    volume = read_volume(series.folder)
    frames = _frames_by_instance(out, volume, 1)
    assert frames.any() and frames.shape[:3] == volume.array.shape


def test_one_series_of_a_shared_folder_by_pointing_at_a_file(model_file, tmp_path, capsys):
    folder = tmp_path / "study"
    first = mf.anonymised(folder, slices=5)
    second = mf.anonymised(folder, slices=7, series_description="second", seed=4)
    out = tmp_path / "seg.dcm"
    code = main(["segment", "--image", str(second.files[3]), "--prompt", "liver", "--out", str(out),
                 "--model", str(model_file), "--device", "cpu", "--quiet", *LOW_THRESHOLD])
    assert code == 0, capsys.readouterr().err
    assert _dciodvfy_errors(out) == []
    seg = hd.seg.segread(out)
    referenced = [item.ReferencedSOPInstanceUID for series_item in seg.ReferencedSeriesSequence
                  for item in series_item.ReferencedInstanceSequence]
    second_uids = {str(pydicom.dcmread(f).SOPInstanceUID) for f in second.files}
    first_uids = {str(pydicom.dcmread(f).SOPInstanceUID) for f in first.files}
    assert set(referenced) == second_uids and not set(referenced) & first_uids


def test_three_formats_from_one_run_agree_voxel_for_voxel(tmp_path):
    series = mf.anonymised(tmp_path / "ct", slices=8)
    volume = read_volume(series.folder)
    centre = volume.geometry.ijk_to_ras(np.asarray(volume.array.shape)[None] / 2 - 0.5)[0]
    session = tiny_predictor().open(volume)
    results = session.segment([Prompt(text="liver"), Prompt(text="left kidney", points=[tuple(centre)])],
                              postprocessing=PostProcessing(threshold=0.2))
    kept = [r for r in results if r.mask.any()]
    assert kept, "the tiny model found nothing; the comparison needs at least one segment"

    written = export_segments(tmp_path / "seg.dcm", results, volume)
    export_segments(tmp_path / "seg.nii.gz", results, volume)
    export_segments(tmp_path / "seg.seg.nrrd", results, volume)
    assert _dciodvfy_errors(written.paths[0]) == []

    from_seg = _frames_by_instance(written.paths[0], volume, len(kept))
    labels = np.asarray(nib.load(tmp_path / "seg.nii.gz").dataobj)
    assert np.allclose(nib.load(tmp_path / "seg.nii.gz").affine, volume.geometry.affine)
    segmentation = slicerio.read_segmentation(str(tmp_path / "seg.seg.nrrd"))
    np.testing.assert_allclose(segmentation["ijkToLPS"], volume.geometry.affine_lps, atol=1e-6)
    by_name = {s["name"]: s for s in segmentation["segments"]}
    for index, result in enumerate(kept):
        label_value = results.index(result) + 1
        from_nifti = labels == label_value
        from_nrrd = np.asarray(slicerio.segment_mask(segmentation, by_name[result.name])).astype(bool)
        np.testing.assert_array_equal(from_seg[..., index], result.mask.astype(bool))
        # the label map stores overlaps once (later prompts win); compare where this segment is the owner
        owned = result.mask.astype(bool) & ~np.any([r.mask for r in results[label_value:]] or [False], axis=0)
        np.testing.assert_array_equal(from_nifti, owned)
        assert from_nrrd.shape == volume.array.shape
        np.testing.assert_array_equal(from_nrrd, result.mask.astype(bool))
