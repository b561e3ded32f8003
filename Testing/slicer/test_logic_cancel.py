"""Cancel -- before the job, while it runs, or after the model finished -- changes nothing in the scene."""
import threading

import numpy as np
import pytest

pytest.importorskip("slicer")


@pytest.fixture
def prepared(make_volume, make_segmentation):
    import slicer

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    segment_id = segmentation.GetSegmentation().AddEmptySegment("", "mine", [0.1, 0.2, 0.3])
    array = np.zeros(slicer.util.arrayFromVolume(volume).shape, np.uint8)
    array[2:6, 3:9, 4:12] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(array, segmentation, segment_id, volume)
    return volume, segmentation, segment_id


def test_cancel_set_before_start(make_logic, prepared, snapshot):
    volume, segmentation, _ = prepared
    before = snapshot(segmentation, volume)
    statuses = []
    stop = threading.Event()
    stop.set()
    outcome = make_logic().segment(volume, segmentation, text="liver", cancel=stop, status_callback=statuses.append)
    assert outcome.cancelled and outcome.segment_ids == []
    assert "Cancelled" in statuses[-1]
    snapshot.same(before, snapshot(segmentation, volume))


@pytest.mark.parametrize("synchronous", [True, False])
def test_cancel_during_the_model_run(make_logic, prepared, snapshot, synchronous):
    volume, segmentation, replaced = prepared
    before = snapshot(segmentation, volume)
    stop = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(message)
        stop.set()  # the user presses Cancel as soon as anything moves

    logic = make_logic(synchronous=synchronous)
    outcome = logic.segment(volume, segmentation, text="liver", replace_segment_id=replaced, cancel=stop,
                            progress_callback=progress, poll_seconds=0.001)
    assert outcome.cancelled and seen
    snapshot.same(before, snapshot(segmentation, volume))
    assert not logic.can_undo and not logic.busy


def test_cancel_after_the_model_finished_but_before_writing(make_logic, prepared, snapshot):
    volume, segmentation, _ = prepared
    before = snapshot(segmentation, volume)
    logic = make_logic()
    pending = logic.start_segmentation(volume, segmentation, text="liver")
    assert pending.done()  # synchronous worker
    pending.cancel()
    outcome = logic.finish_segmentation(pending)
    assert outcome.cancelled
    snapshot.same(before, snapshot(segmentation, volume))


def test_threaded_start_returns_before_the_work_and_progress_is_polled(make_logic, prepared):
    volume, segmentation, _ = prepared
    logic = make_logic(synchronous=False)
    gate = threading.Event()
    logic.worker.submit(gate.wait, 10)  # occupy the worker so the prompt must queue
    pending = logic.start_segmentation(volume, segmentation, text="liver")
    assert not pending.done() and logic.busy
    from RefSAM3DSlicerLib import InputError

    with pytest.raises(InputError, match="still working"):
        logic.start_segmentation(volume, segmentation, text="spleen")
    gate.set()
    assert pending.wait(30)
    fraction, message = pending.progress
    assert fraction == pytest.approx(1.0) and message == "done"
    outcome = logic.finish_segmentation(pending)
    assert len(outcome.added_segment_ids) == 1 and not logic.busy


def test_engine_errors_reach_the_caller_and_write_nothing(make_logic, prepared, snapshot, scene):
    volume, segmentation, _ = prepared
    before = snapshot(segmentation, volume)
    far_away = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    far_away.AddControlPoint(5000.0, 5000.0, 5000.0)
    with pytest.raises(ValueError, match="outside the volume"):
        make_logic(synchronous=False).segment(volume, segmentation, text="liver", positive_points=far_away)
    snapshot.same(before, snapshot(segmentation, volume))


def test_a_volume_removed_while_segmenting_writes_nothing(make_logic, prepared, scene):
    from RefSAM3DSlicerLib import InputError

    volume, segmentation, _ = prepared
    logic = make_logic()
    pending = logic.start_segmentation(volume, segmentation, text="liver")
    scene.RemoveNode(volume)
    with pytest.raises(InputError, match="removed while segmenting"):
        logic.finish_segmentation(pending)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1


def test_a_segment_to_replace_deleted_while_segmenting_writes_nothing(make_logic, prepared, snapshot):
    from RefSAM3DSlicerLib import InputError

    volume, segmentation, target = prepared
    logic = make_logic()
    pending = logic.start_segmentation(volume, segmentation, text="liver", replace_segment_id=target)
    segmentation.GetSegmentation().RemoveSegment(target)
    before = snapshot(segmentation, volume)
    with pytest.raises(InputError, match="deleted while segmenting"):
        logic.finish_segmentation(pending)
    snapshot.same(before, snapshot(segmentation, volume))
    assert not logic.can_undo


def test_a_failed_write_is_rolled_back(make_logic, prepared, snapshot, monkeypatch):
    from RefSAM3DSlicerLib import mrml_adapter

    volume, segmentation, _ = prepared
    before = snapshot(segmentation, volume)
    calls = []
    original = mrml_adapter.add_result_segment

    def fail_on_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(*args)

    monkeypatch.setattr(mrml_adapter, "add_result_segment", fail_on_second)
    logic = make_logic()
    with pytest.raises(RuntimeError, match="disk full"):
        logic.segment(volume, segmentation, text="liver; spleen")
    snapshot.same(before, snapshot(segmentation, volume))
    assert not logic.can_undo
