"""Undo puts back exactly what the last prompt changed: added segments go, a replaced segment returns."""
import numpy as np
import pytest

pytest.importorskip("slicer")


def add_manual_segment(segmentation, volume, name, box):
    import slicer

    segment_id = segmentation.GetSegmentation().AddEmptySegment("", name, [0.9, 0.8, 0.1])
    array = np.zeros(slicer.util.arrayFromVolume(volume).shape, np.uint8)
    array[box] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(array, segmentation, segment_id, volume)
    segmentation.GetSegmentation().GetSegment(segment_id).SetTag("Mine", "yes")
    return segment_id


def test_undo_removes_added_segments(make_logic, make_volume, make_segmentation, snapshot, scene):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    add_manual_segment(segmentation, volume, "tumor", np.s_[2:9, 3:12, 4:15])
    before = snapshot(segmentation, volume)
    logic = make_logic()
    logic.segment(volume, segmentation, text="liver; spleen")
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 3 and logic.can_undo
    message = logic.undo(scene)
    assert message.startswith("Undid")
    snapshot.same(before, snapshot(segmentation, volume))
    assert not logic.can_undo
    assert logic.undo(scene) == "Nothing to undo."


def test_undo_restores_a_replaced_segment_exactly(make_logic, make_volume, make_segmentation, snapshot, scene):
    from RefSAM3DSlicerLib.mrml_adapter import segment_tag

    volume = make_volume("oblique")
    segmentation = make_segmentation(volume)
    other = add_manual_segment(segmentation, volume, "other", np.s_[0:5, 0:6, 0:7])
    target = add_manual_segment(segmentation, volume, "my organ", np.s_[4:12, 5:15, 6:18])  # overlaps "other"
    logic = make_logic()
    earlier = logic.segment(volume, segmentation, text="liver").added_segment_ids
    before = snapshot(segmentation, volume)

    logic.segment(volume, segmentation, text="spleen", replace_segment_id=target)
    changed = snapshot(segmentation, volume)
    assert changed[target][0] == "spleen" and not np.array_equal(changed[target][2], before[target][2])
    assert segment_tag(segmentation, target, "DICOM.SegmentAlgorithmName") == "RefSAM3D"

    logic.undo(scene)
    snapshot.same(before, snapshot(segmentation, volume))
    assert segment_tag(segmentation, target, "Mine") == "yes"
    assert segment_tag(segmentation, target, "DICOM.SegmentAlgorithmName") == ""  # tags restored, not merged
    # the step before is still undoable, in order
    logic.undo(scene)
    assert [segmentation.GetSegmentation().GetNthSegmentID(i)
            for i in range(segmentation.GetSegmentation().GetNumberOfSegments())] == [other, target]
    assert earlier[0] not in snapshot(segmentation, volume)


def test_undo_skips_what_the_user_already_deleted(make_logic, make_volume, make_segmentation, scene):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic()
    added = logic.segment(volume, segmentation, text="liver; spleen").added_segment_ids
    segmentation.GetSegmentation().RemoveSegment(added[0])
    message = logic.undo(scene)
    assert "already been deleted" in message
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 0


def test_undo_after_the_segmentation_was_removed(make_logic, make_volume, make_segmentation, scene):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic()
    logic.segment(volume, segmentation, text="liver")
    scene.RemoveNode(segmentation)
    assert "was removed" in logic.undo(scene)


def test_undo_depth_is_bounded(make_logic, make_volume, make_segmentation, scene):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic(undo_depth=2)
    for _ in range(4):
        logic.segment(volume, segmentation, text="liver")
    assert len(logic.undo_stack) == 2
    logic.undo(scene)
    logic.undo(scene)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 2


def test_undo_restores_a_segment_that_shares_a_layer(make_logic, make_volume, make_segmentation, snapshot, scene):
    volume = make_volume("lps")
    segmentation = make_segmentation(volume)
    add_manual_segment(segmentation, volume, "first", np.s_[0:4, 0:5, 0:6])
    target = add_manual_segment(segmentation, volume, "second", np.s_[8:13, 10:16, 12:20])
    segmentation.GetSegmentation().CollapseBinaryLabelmaps(False)  # as the Segment Editor does: one shared layer
    assert segmentation.GetSegmentation().GetNumberOfLayers() == 1
    assert segmentation.GetSegmentation().GetSegment(target).GetLabelValue() == 2
    before = snapshot(segmentation, volume)
    logic = make_logic()
    logic.segment(volume, segmentation, text="liver", replace_segment_id=target)
    logic.undo(scene)
    snapshot.same(before, snapshot(segmentation, volume))
