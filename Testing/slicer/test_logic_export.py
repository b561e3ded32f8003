"""Export from the panel: NIfTI, .seg.nrrd and DICOM-SEG (referencing the loaded DICOM instances) through the
backend's exporters; an existing file is never replaced unless the caller confirmed it."""
import numpy as np
import pytest

pytest.importorskip("slicer")


def add_segment(segmentation, volume, name, box, color=(0.9, 0.8, 0.1)):
    import slicer

    segment_id = segmentation.GetSegmentation().AddEmptySegment("", name, list(color))
    array = np.zeros(slicer.util.arrayFromVolume(volume).shape, np.uint8)
    array[box] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(array, segmentation, segment_id, volume)
    return segment_id, array.transpose(2, 1, 0) > 0


def test_nifti_and_seg_nrrd_round_trip_and_never_overwrite(make_volume, make_segmentation, tmp_path):
    import nibabel as nib
    import slicerio
    from RefSAM3DSlicerLib.errors import InputError
    from RefSAM3DSlicerLib.export import existing_outputs, export_segmentation, output_path
    from RefSAM3DSlicerLib.mrml_adapter import world_ijk_to_ras

    volume = make_volume("oblique")
    segmentation = make_segmentation(volume, "My result")
    _, liver = add_segment(segmentation, volume, "liver", np.s_[2:9, 3:12, 4:15])
    _, tumour = add_segment(segmentation, volume, "tumour", np.s_[10:13, 12:16, 15:20], (0.2, 0.3, 0.9))

    path = output_path(tmp_path, segmentation, "nifti")
    assert path.name == "My result.nii.gz" and existing_outputs(path) == []
    result = export_segmentation(path, segmentation, volume)
    assert [p.name for p in result.paths] == ["My result.nii.gz", "My result.json"]
    image = nib.load(path)
    np.testing.assert_allclose(image.affine, world_ijk_to_ras(volume), atol=1e-4)
    labels = np.asarray(image.dataobj)
    assert set(np.unique(labels[liver])) == {1} and set(np.unique(labels[tumour])) == {2}
    assert not labels[~(liver | tumour)].any()

    before = path.read_bytes()
    with pytest.raises(InputError, match="exists; choose another name"):
        export_segmentation(path, segmentation, volume)
    assert path.read_bytes() == before
    assert existing_outputs(path) == result.paths
    export_segmentation(path, segmentation, volume, overwrite=True)

    nrrd = output_path(tmp_path, segmentation, "seg.nrrd")
    export_segmentation(nrrd, segmentation, volume)
    read = slicerio.read_segmentation(str(nrrd))
    assert [s["name"] for s in read["segments"]] == ["liver", "tumour"]
    with pytest.raises(InputError):
        export_segmentation(nrrd, segmentation, volume, fmt="seg.nrrd")


def test_refsam3d_segment_keeps_its_codes_in_the_export(make_logic, make_volume, make_segmentation, tmp_path):
    import json

    from RefSAM3DSlicerLib.export import export_segmentation

    pytest.importorskip("torch")
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    make_logic().segment(volume, segmentation, text="liver")
    export_segmentation(tmp_path / "out.nii.gz", segmentation, volume)
    sidecar = json.loads((tmp_path / "out.json").read_text())
    text = json.dumps(sidecar)
    assert "10200004" in text  # SNOMED CT Liver, read back from the segment's terminology tag


def dicom_volume_node(folder, seed_order=3):
    """A volume node as Slicer's DICOM loader makes it: voxels + geometry + DICOM.instanceUIDs."""
    import pydicom
    import slicer
    from dicom_series import write_ct_series

    from RefSAM3DLib.io.readers import read_volume

    series = write_ct_series(folder, columns=16, rows=20, slices=12)
    volume = read_volume(series.folder)
    node = slicer.util.addVolumeFromArray(np.ascontiguousarray(volume.array.transpose(2, 1, 0)),
                                          np.asarray(volume.geometry.affine), "CT from DICOM")
    uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: str(f) for f in series.files}
    shuffled = list(uids)
    np.random.default_rng(seed_order).shuffle(shuffled)  # the attribute's order is not trusted
    node.SetAttribute("DICOM.instanceUIDs", " ".join(shuffled))
    return node, uids, series


def test_dicom_seg_references_the_loaded_instances(make_segmentation, tmp_path, scene):
    pytest.importorskip("highdicom")
    import pydicom
    from RefSAM3DSlicerLib.export import export_segmentation

    volume, uids, series = dicom_volume_node(tmp_path / "ct")
    segmentation = make_segmentation(volume)
    _, mask = add_segment(segmentation, volume, "liver", np.s_[3:8, 4:12, 2:10])
    add_segment(segmentation, volume, "nothing", np.s_[0:0, 0:0, 0:0])
    result = export_segmentation(tmp_path / "seg.dcm", segmentation, volume, file_for_instance=uids.get)
    assert result.skipped_segments == ["nothing"]

    seg = pydicom.dcmread(result.paths[0])
    assert seg.Modality == "SEG"
    slice_of = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: k for k, f in enumerate(series.files)}
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    seen = set()
    for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = slice_of[uid]
        seen.add(k)
        np.testing.assert_array_equal(frame > 0, mask[:, :, k].T)
    assert seen == {k for k in range(mask.shape[2]) if mask[:, :, k].any()}


def test_dicom_seg_refuses_volumes_not_from_dicom(make_volume, make_segmentation, tmp_path):
    from RefSAM3DSlicerLib.errors import InputError
    from RefSAM3DSlicerLib.export import export_segmentation

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    add_segment(segmentation, volume, "liver", np.s_[2:9, 3:12, 4:15])
    with pytest.raises(InputError, match="not loaded from the DICOM database"):
        export_segmentation(tmp_path / "seg.dcm", segmentation, volume)
    assert not (tmp_path / "seg.dcm").exists()


def test_dicom_seg_refuses_a_resampled_volume(make_segmentation, tmp_path):
    import slicer
    from RefSAM3DSlicerLib.errors import InputError
    from RefSAM3DSlicerLib.export import export_segmentation

    volume, uids, _ = dicom_volume_node(tmp_path / "ct")
    matrix = slicer.util.vtkMatrixFromArray(np.diag([1.5, 1.5, 1.5, 1.0]))
    volume.SetIJKToRASMatrix(matrix)  # the grid no longer matches the instances
    segmentation = make_segmentation(volume)
    add_segment(segmentation, volume, "liver", np.s_[3:8, 4:12, 2:10])
    with pytest.raises(InputError, match="no longer match its voxel grid"):
        export_segmentation(tmp_path / "seg.dcm", segmentation, volume, file_for_instance=uids.get)


def test_dicom_seg_is_refused_with_an_install_offer_on_pydicom_2(make_segmentation, tmp_path, monkeypatch):
    """A Slicer that bundles pydicom 2.4 gets highdicom 0.22 from the default install: too old for DICOM-SEG."""
    from RefSAM3DSlicerLib import dependencies
    from RefSAM3DSlicerLib.export import DicomSegSupportMissing, export_segmentation

    volume, uids, _ = dicom_volume_node(tmp_path / "ct")
    segmentation = make_segmentation(volume)
    add_segment(segmentation, volume, "liver", np.s_[3:8, 4:12, 2:10])
    slicer_58 = {"pydicom": "2.4.4", "highdicom": "0.22.0"}
    monkeypatch.setattr(dependencies, "installed_version", lambda name: slicer_58.get(name))
    with pytest.raises(DicomSegSupportMissing, match=r"pydicom 2\.4\.4\); install DICOM-SEG support"):
        export_segmentation(tmp_path / "seg.dcm", segmentation, volume, file_for_instance=uids.get)
    assert not (tmp_path / "seg.dcm").exists()
    export_segmentation(tmp_path / "seg.seg.nrrd", segmentation, volume)  # the other formats still work


def test_the_files_are_written_off_the_main_thread_from_what_was_read_before(make_volume, make_segmentation,
                                                                              tmp_path, scene):
    """prepare_export reads the scene (main thread); the write runs on its own thread and needs no node any more."""
    import nibabel as nib
    from RefSAM3DSlicerLib.export import prepare_export

    volume = make_volume("lps")
    segmentation = make_segmentation(volume)
    _, liver = add_segment(segmentation, volume, "liver", np.s_[2:9, 3:12, 4:15])
    prepared = prepare_export(tmp_path / "out.nii.gz", segmentation, volume)
    assert not (tmp_path / "out.nii.gz").exists()  # nothing written on the main thread
    scene.RemoveNode(segmentation)
    scene.RemoveNode(volume)  # e.g. the user closes the scene while the file is written

    future = prepared.start()
    result = future.result(timeout=60)
    assert [p.name for p in result.paths] == ["out.nii.gz", "out.json"]
    np.testing.assert_array_equal(np.asarray(nib.load(result.paths[0]).dataobj) == 1, liver)


def test_a_failed_background_write_reaches_the_panel_as_its_one_line(make_volume, make_segmentation, tmp_path):
    from RefSAM3DSlicerLib.errors import InputError
    from RefSAM3DSlicerLib.export import prepare_export

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    add_segment(segmentation, volume, "liver", np.s_[2:9, 3:12, 4:15])
    prepared = prepare_export(tmp_path / "out.nii.gz", segmentation, volume)
    (tmp_path / "out.nii.gz").write_bytes(b"written meanwhile")  # appears between the question and the write
    with pytest.raises(InputError, match="exists"):
        prepared.start().result(timeout=60)
    assert (tmp_path / "out.nii.gz").read_bytes() == b"written meanwhile"


EXPORT_WITHOUT_NIBABEL = """
import sys
sys.modules["nibabel"] = None  # a Slicer Python before RefSAM3D's packages are installed: nibabel is not bundled
import numpy as np
import slicer
sys.path.append(sys.argv[2])  # after slicer: a 'slicer' folder on the path would join its package
from slicer_headless import init_headless_slicer
from RefSAM3DSlicerLib.export import export_segmentation, existing_outputs

scene = init_headless_slicer()
volume = slicer.util.addVolumeFromArray(np.zeros((4, 5, 6), np.int16), np.eye(4), "CT")
segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
for call in (lambda: existing_outputs(sys.argv[1], "nifti"), lambda: export_segmentation(sys.argv[1], segmentation,
                                                                                         volume)):
    try:
        call()
    except Exception as error:
        print(type(error).__name__, "|", error)
"""


def test_export_before_the_packages_are_installed_is_refused_in_one_line(tmp_path):
    """What the panel showed as a bare traceback: the exporters import nibabel, which Slicer does not bundle."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    testing = Path(__file__).resolve().parents[1]
    paths = [str(testing.parent), str(testing.parent / "RefSAM3DSlicer")]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    target = tmp_path / "out.nii.gz"
    ran = subprocess.run([sys.executable, "-c", EXPORT_WITHOUT_NIBABEL, str(target), str(testing)],
                         capture_output=True, text=True, env=environment, timeout=120)
    lines = [line for line in ran.stdout.splitlines() if "|" in line]
    assert len(lines) == 2, ran.stdout + ran.stderr
    for line in lines:
        assert line.startswith("ExportPackagesMissing | exporting needs the Python package 'nibabel', which is not "
                               "installed yet; press 'Install dependencies' in the RefSAM3D panel"), line
    assert not target.exists()
