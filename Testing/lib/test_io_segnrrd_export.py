"""The .seg.nrrd must read back identically with slicerio and with Slicer's own MRML storage node."""
from __future__ import annotations

import numpy as np
import pytest
import slicerio
from scipy.spatial.transform import Rotation

from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.segnrrd_export import slicer_terminology_string, write_seg_nrrd
from RefSAM3DLib.vocab.codes import Code, Terminology

GRIDS = {
    "RAS": VolumeGeometry.from_spacing((16, 14, 10), spacing=(1.0, 1.2, 3.0), origin=(5.0, -7.0, 20.0)),
    "oblique": VolumeGeometry.from_spacing((17, 13, 9), spacing=(0.8, 0.9, 2.5), origin=(-40.0, 12.5, 88.0),
                                           direction=Rotation.from_euler("xz", [10, 20], degrees=True).as_matrix()
                                           @ np.diag([-1.0, -1.0, 1.0])),
}


def test_terminology_string_is_slicers_entry_format():
    liver = Terminology(Code("123037004", "SCT", "Anatomical Structure"), Code("10200004", "SCT", "Liver"))
    assert slicer_terminology_string(liver) == (
        "Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~SCT^10200004^Liver"
        "~^^~Anatomic codes - DICOM master list~^^~^^")
    left_kidney = Terminology(liver.category, Code("64033007", "SCT", "Kidney"), Code("7771000", "SCT", "Left"))
    assert slicer_terminology_string(left_kidney).split("~")[2:4] == ["SCT^64033007^Kidney", "SCT^7771000^Left"]


@pytest.mark.parametrize("grid", list(GRIDS))
def test_slicerio_reads_back_segments_geometry_and_tags(tmp_path, make_segments, grid):
    geometry = GRIDS[grid]
    segments = make_segments(geometry.shape)
    path = write_seg_nrrd(tmp_path / "result.seg.nrrd", segments, geometry)
    segmentation = slicerio.read_segmentation(str(path))
    np.testing.assert_allclose(segmentation["ijkToLPS"], geometry.affine_lps, atol=1e-6)
    assert segmentation["voxels"].shape[-3:] == geometry.shape
    assert segmentation["voxels"].ndim == 4  # liver and kidney overlap -> two layers
    assert [s["name"] for s in segmentation["segments"]] == [s.name for s in segments]
    for written, segment in zip(segmentation["segments"], segments):
        np.testing.assert_array_equal(slicerio.segment_mask(segmentation, written), segment.mask)
        np.testing.assert_allclose(written["color"], segment.color)
        assert written["terminology"]["type"] == [segment.terminology.type.scheme, segment.terminology.type.value,
                                                  segment.terminology.type.meaning]
        assert written["tags"]["DICOM.SegmentAlgorithmType"] == segment.algorithm_type
        assert written["tags"]["DICOM.SegmentAlgorithmName"] == "RefSAM3D"
    layers = {s["name"]: s["layer"] for s in segmentation["segments"]}
    assert layers["liver"] != layers["left kidney"] and layers["corner lesion"] == layers["liver"]


def test_single_layer_when_nothing_overlaps(tmp_path, make_segments):
    geometry = GRIDS["RAS"]
    segments = make_segments(geometry.shape)[2:]
    path = write_seg_nrrd(tmp_path / "result.seg.nrrd", segments, geometry)
    segmentation = slicerio.read_segmentation(str(path))
    assert segmentation["voxels"].ndim == 3


@pytest.mark.parametrize("grid", list(GRIDS))
def test_slicer_mrml_loads_the_file(tmp_path, make_segments, grid):
    pytest.importorskip("slicer")
    import vtk
    from slicer_headless import init_headless_slicer

    scene = init_headless_slicer()
    import slicer
    import slicer.util

    geometry = GRIDS[grid]
    segments = make_segments(geometry.shape)
    path = write_seg_nrrd(tmp_path / "result.seg.nrrd", segments, geometry)
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(segmentation_node) == 1
    segmentation = segmentation_node.GetSegmentation()
    segment_ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    assert [segmentation.GetSegment(i).GetName() for i in segment_ids] == [s.name for s in segments]

    ijk_to_ras = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            ijk_to_ras.SetElement(row, column, geometry.affine[row, column])
    reference = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    reference.SetIJKToRASMatrix(ijk_to_ras)
    image = vtk.vtkImageData()
    image.SetDimensions(*geometry.shape)
    image.AllocateScalars(vtk.VTK_SHORT, 1)
    reference.SetAndObserveImageData(image)
    for segment_id, segment in zip(segment_ids, segments):
        voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, reference)
        np.testing.assert_array_equal(voxels.astype(bool), segment.mask.transpose(2, 1, 0))
        tag = vtk.mutable("")
        assert segmentation.GetSegment(segment_id).GetTag("TerminologyEntry", tag)
        assert str(tag) == slicer_terminology_string(segment.terminology)
    # the stored labelmap itself sits on the input grid (not just resampled onto it)
    labelmap = segmentation.GetSegment(segment_ids[0]).GetRepresentation("Binary labelmap")
    image_to_world = vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(image_to_world)
    matrix = np.array([[image_to_world.GetElement(r, c) for c in range(4)] for r in range(4)])
    np.testing.assert_allclose(matrix, geometry.affine, atol=1e-4)
