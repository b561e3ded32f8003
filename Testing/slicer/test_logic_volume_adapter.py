"""Volume node -> backend Volume: exact IJK->RAS (incl. parent transforms) and the [k,j,i] -> [i,j,k] swap."""
import numpy as np
import pytest

pytest.importorskip("slicer")


def node_matrix(volume_node) -> np.ndarray:
    import slicer
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


@pytest.mark.parametrize("kind", ["ras", "lps", "oblique"])
def test_geometry_and_voxels_round_trip(make_volume, kind):
    import slicer
    from RefSAM3DSlicerLib.mrml_adapter import volume_from_node

    node = make_volume(kind)
    volume = volume_from_node(node)
    np.testing.assert_array_equal(volume.geometry.affine, node_matrix(node))
    kji = slicer.util.arrayFromVolume(node)
    assert volume.array.shape == kji.shape[::-1]
    np.testing.assert_array_equal(volume.array, kji.transpose(2, 1, 0))
    # the same voxel seen both ways lands at the same RAS point
    i, j, k = 3, 5, 7
    assert volume.array[i, j, k] == kji[k, j, i]
    np.testing.assert_allclose(volume.geometry.ijk_to_ras([i, j, k])[0], (node_matrix(node) @ [i, j, k, 1])[:3])
    # a private copy: later edits of the node do not reach a running job
    kji[k, j, i] += 1000
    assert volume.array[i, j, k] != kji[k, j, i]


def test_parent_transform_is_composed(scene, make_volume):
    import slicer
    import vtk
    from RefSAM3DSlicerLib.mrml_adapter import volume_from_node

    node = make_volume("oblique")
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    to_parent = np.eye(4)
    to_parent[:3, 3] = [5.0, -7.0, 11.0]
    to_parent[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(to_parent))
    node.SetAndObserveTransformNodeID(transform.GetID())
    np.testing.assert_allclose(volume_from_node(node).geometry.affine, to_parent @ node_matrix(node), atol=1e-12)
    del vtk


def test_bad_volumes_give_one_line_messages(scene, make_volume):
    import slicer
    from RefSAM3DSlicerLib import InputError
    from RefSAM3DSlicerLib.mrml_adapter import volume_from_node

    with pytest.raises(InputError, match="select an input volume"):
        volume_from_node(None)
    labelmap = slicer.util.addVolumeFromArray(np.zeros((4, 5, 6), np.uint8), nodeClassName="vtkMRMLLabelMapVolumeNode")
    with pytest.raises(InputError, match="not a grayscale"):
        volume_from_node(labelmap)
    vector = slicer.util.addVolumeFromArray(np.zeros((4, 5, 6, 3), np.uint8), nodeClassName="vtkMRMLVectorVolumeNode")
    with pytest.raises(InputError, match="not a grayscale|components"):
        volume_from_node(vector)
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="no voxels"):
        volume_from_node(empty)
    node = make_volume("ras")
    scene.RemoveNode(node)
    with pytest.raises(InputError, match="no longer in the scene"):
        volume_from_node(node)


def test_fingerprint_follows_voxels_and_grid(make_volume):
    import slicer
    from RefSAM3DSlicerLib.mrml_adapter import volume_fingerprint

    node = make_volume("lps")
    first = volume_fingerprint(node)
    assert volume_fingerprint(node) == first  # reading does not change it
    node.SetAttribute("note", "display-only change")
    assert volume_fingerprint(node) == first
    slicer.util.updateVolumeFromArray(node, slicer.util.arrayFromVolume(node) + 1)
    second = volume_fingerprint(node)
    assert second != first
    node.SetOrigin(1.0, 2.0, 3.0)
    assert volume_fingerprint(node) != second
