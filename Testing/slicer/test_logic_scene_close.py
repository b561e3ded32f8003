"""Closing the scene while a step runs: the step is cancelled and writes nothing, the next prompt is not refused
("still working") but runs as soon as the cancelled step has stopped, and nothing of the old scene can be undone.
The scene is closed the way Slicer closes it (Clear fires EndCloseEvent), observed through VTKObservationMixin as
the widget observes it."""
import threading

import pytest

pytest.importorskip("slicer")
pytest.importorskip("torch")


def watch_scene_close(scene, loop):
    """The widget's observer: on EndCloseEvent the loop is reset (RefSAM3DSlicerWidget.onSceneEndClose)."""
    from slicer.util import VTKObservationMixin

    class SceneCloseWatcher(VTKObservationMixin):
        def on_scene_end_close(self, caller, event):
            loop.reset()

    watcher = SceneCloseWatcher()
    watcher.addObserver(scene, scene.EndCloseEvent, watcher.on_scene_end_close)
    return watcher


def test_closing_the_scene_cancels_the_running_step_and_the_next_prompt_runs(scene, make_logic, make_volume,
                                                                              make_segmentation):
    from RefSAM3DSlicerLib.interaction import InteractiveLoop

    logic = make_logic(synchronous=False)
    reports = []
    loop = InteractiveLoop(logic, step_callback=reports.append)
    watcher = watch_scene_close(scene, loop)
    try:
        old_volume = make_volume("ras", name="before close")
        old_segmentation = make_segmentation(old_volume)
        gate = threading.Event()
        logic.worker.submit(gate.wait, 30)  # the step is still running when the scene closes
        loop.start_text(old_volume, old_segmentation, "liver")
        assert loop.busy
        scene.Clear(0)

        volume = make_volume("lps", seed=1, name="after close")
        segmentation = make_segmentation(volume)
        loop.start_text(volume, segmentation, "spleen")
        assert loop.queued == 1 and not reports, "the new prompt waits for the cancelled step, it is not refused"
        gate.set()
        loop.wait()
    finally:
        watcher.removeObservers()

    assert [(report.error, report.loop_object.volume_node is volume) for report in reports] == [(False, True)]
    assert old_segmentation.GetSegmentation().GetNumberOfSegments() == 0  # the cancelled step wrote nothing
    spleen = segmentation.GetSegmentation()
    assert spleen.GetNumberOfSegments() == 1 and spleen.GetNthSegment(0).GetName() == "spleen"
    assert len(logic.undo_stack) == 1 and not logic.busy


def test_closing_the_scene_forgets_what_could_be_undone(scene, make_logic, make_volume, make_segmentation):
    from RefSAM3DSlicerLib.interaction import InteractiveLoop

    logic = make_logic()
    loop = InteractiveLoop(logic)
    watcher = watch_scene_close(scene, loop)
    try:
        volume = make_volume("ras")
        loop.start_text(volume, make_segmentation(volume), "liver")
        assert logic.can_undo and loop.current is not None
        scene.Clear(0)
    finally:
        watcher.removeObservers()
    assert not logic.can_undo and loop.current is None and loop.queued == 0
