"""Clicks and boxes are read in world RAS: what the user saw, also under parent transforms."""
import numpy as np
import pytest

pytest.importorskip("slicer")


@pytest.fixture
def shifted_rotated(scene):
    """A transform that rotates 90 degrees about S and moves (10, -20, 5) mm."""
    import slicer

    matrix = np.array([[0.0, -1.0, 0.0, 10.0], [1.0, 0.0, 0.0, -20.0], [0.0, 0.0, 1.0, 5.0], [0, 0, 0, 1]])
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    node.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(matrix))
    return node, matrix


def add_points(scene, positions, name="P"):
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    for position in positions:
        node.AddControlPoint(*position)
    return node


def test_positive_and_negative_lists(scene):
    from RefSAM3DSlicerLib.prompts_from_markups import points_from_markups

    include = add_points(scene, [(1, 2, 3), (4, 5, 6)])
    exclude = add_points(scene, [(7, 8, 9)], "N")
    points, labels = points_from_markups(include, exclude)
    assert points == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert labels == [True, True, False]


def test_points_marked_negative_in_a_single_list(scene):
    from RefSAM3DSlicerLib.prompts_from_markups import points_from_markups

    node = add_points(scene, [(1, 2, 3), (4, 5, 6), (7, 8, 9)])
    node.SetNthControlPointDescription(1, "-")
    node.SetNthControlPointLabel(2, "exclude")
    assert points_from_markups(node)[1] == [True, False, False]


def test_points_under_a_parent_transform_are_world_coordinates(scene, shifted_rotated):
    from RefSAM3DSlicerLib.prompts_from_markups import points_from_markups

    transform, matrix = shifted_rotated
    node = add_points(scene, [(1.0, 2.0, 3.0)])
    node.SetAndObserveTransformNodeID(transform.GetID())
    (point,), _ = points_from_markups(node)
    np.testing.assert_allclose(point, (matrix @ [1.0, 2.0, 3.0, 1.0])[:3])  # (8, -19, 8)


def test_unplaced_points_are_skipped(scene):
    from RefSAM3DSlicerLib.prompts_from_markups import points_from_markups

    node = add_points(scene, [(1, 2, 3), (4, 5, 6)])
    node.UnsetNthControlPointPosition(1)  # e.g. a point the user is still dragging in
    assert points_from_markups(node)[0] == [(1, 2, 3)]


def test_roi_box_in_world_coordinates(scene, shifted_rotated):
    from RefSAM3DSlicerLib.prompts_from_markups import box_from_roi

    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    roi.SetCenter(1.0, 2.0, 3.0)
    roi.SetSize(4.0, 6.0, 8.0)
    low, high = box_from_roi(roi)
    np.testing.assert_allclose(low, (-1, -1, -1))
    np.testing.assert_allclose(high, (3, 5, 7))
    transform, matrix = shifted_rotated
    roi.SetAndObserveTransformNodeID(transform.GetID())
    low, high = box_from_roi(roi)
    corners = np.array([[x, y, z, 1] for x in (-1, 3) for y in (-1, 5) for z in (-1, 7)]) @ matrix.T
    np.testing.assert_allclose(low, corners[:, :3].min(0), atol=1e-9)
    np.testing.assert_allclose(high, corners[:, :3].max(0), atol=1e-9)


def test_missing_or_wrong_markups(scene):
    from RefSAM3DSlicerLib import InputError
    from RefSAM3DSlicerLib.prompts_from_markups import box_from_roi, count_clicks, points_from_markups

    assert points_from_markups(None, None) == ([], [])
    assert box_from_roi(None) is None
    assert box_from_roi(scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")) is None  # created, never placed
    with pytest.raises(InputError, match="not a point list"):
        points_from_markups(scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode"))
    with pytest.raises(InputError, match="not a markups ROI"):
        box_from_roi(add_points(scene, [(0, 0, 0)]))
    assert count_clicks(add_points(scene, [(0, 0, 0)])) == "1 include, 0 exclude click(s)"


def test_clicks_reach_the_engine_in_world_coordinates(make_logic, make_volume, make_segmentation, scene,
                                                      shifted_rotated):
    """Volume, segmentation and clicks under one transform: the engine sees world RAS on a world grid."""
    transform, matrix = shifted_rotated
    volume = make_volume("oblique")
    volume.SetAndObserveTransformNodeID(transform.GetID())
    segmentation = make_segmentation(volume)
    logic = make_logic()
    from RefSAM3DSlicerLib.mrml_adapter import volume_from_node

    geometry = volume_from_node(volume).geometry
    centre_world = geometry.ijk_to_ras((np.asarray(geometry.shape) - 1) / 2)[0]
    points = add_points(scene, [tuple(np.linalg.solve(matrix, [*centre_world, 1.0])[:3])])
    points.SetAndObserveTransformNodeID(transform.GetID())
    prompts = logic.build_prompts("liver", points)
    np.testing.assert_allclose(prompts[-1].points[0], centre_world, atol=1e-9)
    outcome = logic.segment(volume, segmentation, text="liver", positive_points=points)
    assert len(outcome.added_segment_ids) == 1
    assert segmentation.GetTransformNodeID() == transform.GetID()  # an empty segmentation follows the volume
