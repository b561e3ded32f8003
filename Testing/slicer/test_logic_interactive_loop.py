"""The interactive loop: text makes a segment, each click refines THAT segment at once, clicks arriving while a
step runs are queued and merged, undo walks back step by step exactly, and a Segment Editor edit is never
silently destroyed by undo."""
import threading

import numpy as np
import pytest

pytest.importorskip("slicer")
pytest.importorskip("torch")


def ras_of(volume, ijk):
    from RefSAM3DSlicerLib.mrml_adapter import world_ijk_to_ras

    return tuple((world_ijk_to_ras(volume) @ np.array([*ijk, 1.0]))[:3])


CENTRE, NEAR, FAR = (11, 9, 7), (14, 11, 8), (3, 4, 2)  # i, j, k on the 22 x 18 x 14 test grid


def segment_ids(segmentation):
    seg = segmentation.GetSegmentation()
    return [seg.GetNthSegmentID(i) for i in range(seg.GetNumberOfSegments())]


def open_session(logic, volume):
    from RefSAM3DSlicerLib.mrml_adapter import volume_fingerprint

    return logic.worker.session(logic.worker.session_key(volume_fingerprint(volume), None))


def make_loop(logic):
    from RefSAM3DSlicerLib.interaction import InteractiveLoop

    statuses = []
    return InteractiveLoop(logic, status_callback=statuses.append), statuses


def paint(segmentation, volume, segment_id, box, value=1):
    """What a Segment Editor paint/erase stroke does: merge a block into (or cut it out of) the segment."""
    import slicer

    array = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume).copy()
    array[box] = value
    slicer.util.updateSegmentBinaryLabelmapFromArray(array, segmentation, segment_id, volume)


def test_a_click_refines_the_same_segment_with_the_previous_result(make_logic, make_volume, make_segmentation):
    from RefSAM3DSlicerLib.mrml_adapter import read_mask

    from RefSAM3DLib.engine.prompts import Prompt

    volume = make_volume("oblique")
    segmentation = make_segmentation(volume)
    logic = make_logic()
    loop, statuses = make_loop(logic)
    loop.start_text(volume, segmentation, "liver")
    first_id, = segment_ids(segmentation)
    first = loop.reports[-1].outcome.results[0]
    encoded = open_session(logic, volume).encoded_windows

    loop.add_click(volume, segmentation, ras_of(volume, NEAR), positive=True)
    assert segment_ids(segmentation) == [first_id], "a click must refine the segment, not add one"
    assert loop.current.segment_id == first_id and len(loop.current.clicks) == 1
    refined = loop.reports[-1].outcome.results[0]
    # exactly what the engine gives for the same clicks with the last result fed back
    expected, = open_session(logic, volume).segment(
        Prompt(text="liver", points=[ras_of(volume, NEAR)], point_labels=[True], previous=first),
        postprocessing=logic.postprocessing(), presence_threshold=logic.settings.presence_threshold)
    np.testing.assert_array_equal(refined.mask, expected.mask)
    np.testing.assert_array_equal(read_mask(segmentation, first_id, volume), refined.mask)
    assert open_session(logic, volume).encoded_windows == encoded, "a click must reuse the cached windows"
    assert logic.worker.sessions_opened == 1
    assert segmentation.GetSegmentation().GetSegment(first_id).GetName() == "liver"
    assert statuses[-1].startswith("Refined 'liver' (1 include, 0 exclude click(s)) in ")

    loop.add_click(volume, segmentation, ras_of(volume, FAR), positive=False)
    assert segment_ids(segmentation) == [first_id] and len(loop.current.clicks) == 2
    assert len(logic.undo_stack) == 3


def test_click_only_objects_and_new_object(make_logic, make_volume, make_segmentation):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    loop, _ = make_loop(make_logic())
    loop.add_click(volume, segmentation, ras_of(volume, CENTRE))
    first, = segment_ids(segmentation)
    loop.add_click(volume, segmentation, ras_of(volume, NEAR))
    assert segment_ids(segmentation) == [first]
    loop.new_object()
    loop.add_click(volume, segmentation, ras_of(volume, FAR))
    assert len(segment_ids(segmentation)) == 2 and loop.current.segment_id != first
    loop.start_text(volume, segmentation, "spleen")
    loop.set_box(volume, segmentation, (ras_of(volume, (4, 4, 3)), ras_of(volume, (18, 15, 11))))
    ids = segment_ids(segmentation)
    assert len(ids) == 3 and loop.current.segment_id == ids[-1] and loop.current.box is not None


def test_renamed_segment_keeps_its_name_through_refinement_and_undo(make_logic, make_volume, make_segmentation,
                                                                   scene):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    loop, _ = make_loop(make_logic())
    loop.start_text(volume, segmentation, "liver")
    segment = segmentation.GetSegmentation().GetSegment(loop.current.segment_id)
    segment.SetName("my liver")  # renamed in the segments table
    loop.add_click(volume, segmentation, ras_of(volume, NEAR))
    assert segment.GetName() == "my liver"
    segment.SetColor(0.1, 0.2, 0.3)
    loop.undo(scene)
    assert segment.GetName() == "my liver" and tuple(round(c, 6) for c in segment.GetColor()) == (0.1, 0.2, 0.3)


def test_clicks_during_a_running_step_are_queued_then_merged(make_logic, make_volume, make_segmentation):
    volume = make_volume("lps")
    segmentation = make_segmentation(volume)
    logic = make_logic(synchronous=False)
    loop, _ = make_loop(logic)
    gate = threading.Event()
    logic.worker.submit(gate.wait, 30)  # the worker thread is busy until the gate opens
    loop.start_text(volume, segmentation, "liver")
    assert loop.busy
    for ijk, positive in ((NEAR, True), (FAR, False), (CENTRE, True)):
        loop.add_click(volume, segmentation, ras_of(volume, ijk), positive)  # returns at once: the GUI never waits
    assert loop.queued == 3 and loop.busy
    gate.set()
    loop.wait()
    assert not loop.busy and loop.queued == 0
    assert len(segment_ids(segmentation)) == 1
    assert [c.positive for c in loop.current.clicks] == [True, False, True], "no click may be lost"
    assert len(logic.undo_stack) == 2, "three queued clicks should cost one merged step"
    assert "3 click" not in loop.reports[-1].message and "2 include, 1 exclude" in loop.reports[-1].message


def test_undo_removes_a_queued_click_first(make_logic, make_volume, make_segmentation, scene):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic(synchronous=False)
    loop, _ = make_loop(logic)
    gate = threading.Event()
    logic.worker.submit(gate.wait, 30)
    loop.start_text(volume, segmentation, "liver")
    loop.add_click(volume, segmentation, ras_of(volume, NEAR))
    loop.add_click(volume, segmentation, ras_of(volume, FAR), positive=False)
    assert loop.queued == 2
    assert "queued click" in loop.undo(scene) and loop.queued == 1
    gate.set()
    loop.wait()
    assert [c.positive for c in loop.current.clicks] == [True], "the newest queued click went, the other ran"
    gate.clear()
    logic.worker.submit(gate.wait, 30)
    loop.add_click(volume, segmentation, ras_of(volume, FAR), positive=False)  # idle: runs at once
    from RefSAM3DSlicerLib.errors import InputError

    with pytest.raises(InputError, match="step is running"):
        loop.undo(scene)  # nothing queued, and the running step cannot be undone before it has written
    gate.set()
    loop.wait()


def test_undo_after_a_sequence_of_clicks_restores_each_state_exactly(make_logic, make_volume, make_segmentation,
                                                                     snapshot, scene):
    volume = make_volume("oblique")
    segmentation = make_segmentation(volume)
    loop, _ = make_loop(make_logic())
    states = [snapshot(segmentation, volume)]
    loop.start_text(volume, segmentation, "liver")
    states.append(snapshot(segmentation, volume))
    for ijk, positive in ((NEAR, True), (FAR, False), (CENTRE, True)):
        loop.add_click(volume, segmentation, ras_of(volume, ijk), positive)
        states.append(snapshot(segmentation, volume))
    changed = [not np.array_equal(a[loop.current.segment_id][2], b[loop.current.segment_id][2])
               for a, b in zip(states[1:], states[2:])]
    assert any(changed), "the clicks should have changed the segment"
    for expected_clicks, state in zip((2, 1, 0), reversed(states[1:-1])):
        assert loop.undo(scene).startswith("Undid")
        snapshot.same(state, snapshot(segmentation, volume))
        assert len(loop.current.clicks) == expected_clicks
    loop.undo(scene)
    snapshot.same(states[0], snapshot(segmentation, volume))
    # and forward again: a click after undo refines the restored state, same segment as before
    loop.start_text(volume, segmentation, "liver")
    loop.add_click(volume, segmentation, ras_of(volume, NEAR))
    assert len(segment_ids(segmentation)) == 1


def test_segment_editor_edit_is_never_destroyed_by_undo(make_logic, make_volume, make_segmentation, snapshot,
                                                        scene):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic()
    loop, _ = make_loop(logic)
    loop.start_text(volume, segmentation, "liver")
    loop.add_click(volume, segmentation, ras_of(volume, NEAR))
    segment_id = loop.current.segment_id
    after_click = snapshot(segmentation, volume)

    paint(segmentation, volume, segment_id, np.s_[1:4, 1:5, 1:6])  # the user paints in the Segment Editor
    segmentation.GetSegmentation().CollapseBinaryLabelmaps(False)  # as the editor does
    edited = snapshot(segmentation, volume)
    message = loop.undo(scene)
    assert message.startswith("Not undone") and "'liver' was edited" in message
    snapshot.same(edited, snapshot(segmentation, volume))  # the edit is intact
    assert len(logic.undo_stack) == 2 and len(loop.current.clicks) == 1  # nothing was popped

    # a further click builds on the edited voxels; undoing it gives the edit back exactly
    loop.add_click(volume, segmentation, ras_of(volume, FAR), positive=False)
    loop.undo(scene)
    snapshot.same(edited, snapshot(segmentation, volume))
    assert loop.undo(scene).startswith("Not undone")  # the older step would still overwrite the edit

    # the user takes the edit back (the editor's own undo): then RefSAM3D's undo works again
    paint(segmentation, volume, segment_id, np.s_[1:4, 1:5, 1:6], value=0)
    array = after_click[segment_id][2]
    import slicer

    slicer.util.updateSegmentBinaryLabelmapFromArray(array, segmentation, segment_id, volume)
    assert loop.undo(scene).startswith("Undid")
    assert len(loop.current.clicks) == 0


def test_a_deleted_segment_is_made_again_by_the_next_click(make_logic, make_volume, make_segmentation):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    loop, _ = make_loop(make_logic())
    loop.start_text(volume, segmentation, "liver")
    segmentation.GetSegmentation().RemoveSegment(loop.current.segment_id)
    loop.add_click(volume, segmentation, ras_of(volume, CENTRE))
    ids = segment_ids(segmentation)
    assert len(ids) == 1 and loop.current.segment_id == ids[0]


def test_errors_are_reported_and_the_loop_goes_on(make_logic, make_volume, make_segmentation, scene):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    loop, statuses = make_loop(make_logic())
    loop.add_click(volume, segmentation, (9999.0, 9999.0, 9999.0))  # outside the volume
    assert loop.reports[-1].error and not loop.busy
    assert len(statuses[-1].splitlines()) == 1
    loop.new_object()
    loop.add_click(volume, segmentation, ras_of(volume, CENTRE))
    assert not loop.reports[-1].error and len(segment_ids(segmentation)) == 1


def test_refining_never_takes_voxels_from_other_segments_in_a_shared_layer(make_logic, make_volume,
                                                                           make_segmentation, scene):
    import slicer

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    loop, _ = make_loop(make_logic())
    loop.start_text(volume, segmentation, "liver")
    first = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, loop.current.segment_id, volume).copy()
    mine = segmentation.GetSegmentation().AddEmptySegment("", "mine", [0.1, 0.9, 0.1])
    slicer.util.updateSegmentBinaryLabelmapFromArray((first == 0).astype(np.uint8), segmentation, mine, volume)
    segmentation.GetSegmentation().CollapseBinaryLabelmaps(False)  # the Segment Editor shares one layer
    assert segmentation.GetSegmentation().GetNumberOfLayers() == 1
    before = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, mine, volume).copy()
    for ijk in (FAR, (18, 15, 11), CENTRE):  # include clicks all around: the segment grows into "mine"
        loop.add_click(volume, segmentation, ras_of(volume, ijk))
    grown = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, loop.current.segment_id, volume)
    assert (grown & ~first).any(), "the clicks should have grown the segment"
    np.testing.assert_array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, mine, volume), before)


def test_supersede_cancels_the_running_refinement_and_keeps_its_clicks(make_logic, make_volume, make_segmentation):
    from RefSAM3DSlicerLib.interaction import InteractiveLoop

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic(synchronous=False)
    loop = InteractiveLoop(logic, supersede=True)
    loop.start_text(volume, segmentation, "liver")
    loop.wait()
    gate = threading.Event()
    logic.worker.submit(gate.wait, 30)
    loop.add_click(volume, segmentation, ras_of(volume, NEAR))  # starts, waits behind the gate
    loop.add_click(volume, segmentation, ras_of(volume, FAR), positive=False)  # supersedes it
    gate.set()
    loop.wait()
    messages = [r.message for r in loop.reports]
    assert messages[1].startswith("Superseded by a newer click")
    assert "1 include, 1 exclude" in messages[2]
    assert len(segment_ids(segmentation)) == 1 and len(logic.undo_stack) == 2, "text step + one merged refinement"

    # a text step is never superseded: its clicks wait for it
    gate.clear()
    logic.worker.submit(gate.wait, 30)
    loop.start_text(volume, segmentation, "spleen")
    loop.add_click(volume, segmentation, ras_of(volume, CENTRE))
    gate.set()
    loop.wait()
    assert not any(r.outcome is not None and r.outcome.cancelled for r in loop.reports[3:])
    assert len(segment_ids(segmentation)) == 2
