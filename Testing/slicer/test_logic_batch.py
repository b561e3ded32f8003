"""Batch from the panel: every loaded volume (or sequence frame) gets its own segmentation; a failing volume is
reported and skipped; Cancel stops the run and writes nothing for the volume in progress."""
import threading

import numpy as np
import pytest

pytest.importorskip("slicer")
pytest.importorskip("torch")


def segmentations(scene):
    return [scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
            for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))]


def test_every_loaded_volume_gets_its_own_segmentation_and_failures_are_skipped(make_logic, make_volume, scene):
    from RefSAM3DSlicerLib.batch import BatchRun, loaded_volumes, volume_sources

    first = make_volume("ras", name="CT one")
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "still loading")  # no voxels: must fail, not stop
    second = make_volume("lps", seed=1, name="CT two")
    scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")  # not a candidate
    volumes = loaded_volumes(scene)
    assert [v.GetName() for v in volumes] == ["CT one", "still loading", "CT two"]
    seen = []
    run = BatchRun(make_logic(), volume_sources(volumes), text="liver",
                   progress_callback=lambda *args: seen.append(args[:3]))
    outcome = run.run()
    assert [name for name, _, _ in outcome.done] == ["CT one", "CT two"]
    assert outcome.failed[0][0] == "still loading" and "no voxels" in outcome.failed[0][1]
    assert len(outcome.failed) == 1 and not outcome.cancelled
    names = sorted(s.GetName() for s in segmentations(scene))
    assert names == ["CT one RefSAM3D", "CT two RefSAM3D"]
    for _, segmentation, result in outcome.done:
        assert segmentation.GetSegmentation().GetNumberOfSegments() == 1 and result.added_segment_ids
    assert "2 segmented" in outcome.message and "1 failed" in outcome.message
    assert first.GetScene() is scene and second.GetScene() is scene and empty.GetScene() is scene


def test_cancel_stops_the_run_and_writes_nothing_for_the_running_volume(make_logic, make_volume, scene):
    from RefSAM3DSlicerLib.batch import BatchRun, volume_sources

    volumes = [make_volume("ras", seed=s, name=f"CT {s}") for s in range(3)]
    logic = make_logic(synchronous=False)
    gate = threading.Event()
    logic.worker.submit(gate.wait, 30)
    run = BatchRun(logic, volume_sources(volumes), text="liver")
    run.start()
    assert run.poll() and run.progress[:3] == (0, 3, "CT 0")  # started, returned at once
    run.cancel()
    gate.set()
    while run.poll():
        run._running[0].wait(0.05)
    assert run.outcome.cancelled and run.outcome.done == [] and run.finished
    assert segmentations(scene) == []


def test_every_frame_of_a_sequence(make_logic, make_volume, scene):
    import slicer
    from RefSAM3DSlicerLib.batch import BatchRun, sequence_sources

    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", "Perfusion")
    for index in range(3):
        frame = make_volume("oblique", seed=index, name=f"frame {index}")
        sequence.SetDataNodeAtValue(frame, str(index))
        scene.RemoveNode(frame)  # the sequence keeps its own copy
    before = scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")
    outcome = BatchRun(make_logic(), sequence_sources(sequence, scene), text="liver").run()
    assert [name for name, _, _ in outcome.done] == ["Perfusion [0]", "Perfusion [1]", "Perfusion [2]"]
    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == before, "temporary frame nodes stay behind"
    for _, segmentation, _ in outcome.done:
        segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
        assert slicer.util.arrayFromSegmentInternalBinaryLabelmap(segmentation, segment_id).any()
    masks = [result.results[0].mask for _, _, result in outcome.done]
    assert not all(np.array_equal(masks[0], m) for m in masks[1:]), "each frame should be segmented on its own"


def test_an_empty_prompt_is_refused_before_anything_runs(make_logic, make_volume):
    from RefSAM3DSlicerLib.batch import BatchRun, volume_sources
    from RefSAM3DSlicerLib.errors import InputError

    with pytest.raises(InputError, match="type what to segment"):
        BatchRun(make_logic(), volume_sources([make_volume("ras")]), text="  ")
    with pytest.raises(InputError, match="no volumes"):
        BatchRun(make_logic(), [], text="liver")
