"""Clicks and boxes reach the interactive loop the way Slicer delivers them: real markups nodes, observers added
through VTKObservationMixin, control points placed and ROIs drawn and resized so that MRML fires its own events
(markups_interaction.py makes the calls Slicer's markups widgets make)."""
from types import SimpleNamespace

import numpy as np
import pytest
from markups_interaction import draw_box, place_point, placement_target, resize_box, start_placing

pytest.importorskip("slicer")
pytest.importorskip("torch")


@pytest.fixture
def panel(scene, make_logic, make_volume, make_segmentation):
    """What the widget builds: a loop on the tiny model, the prompt markups observing the scene's nodes."""
    from RefSAM3DSlicerLib.interaction import InteractiveLoop
    from RefSAM3DSlicerLib.prompt_markups import PromptMarkups

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    loop = InteractiveLoop(make_logic())
    ready = SimpleNamespace(value=True)
    markups = PromptMarkups(loop, lambda: (volume, segmentation), ready=lambda: ready.value)
    parameters = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    nodes = markups.ensure_nodes(parameters, scene)
    yield SimpleNamespace(scene=scene, volume=volume, segmentation=segmentation, loop=loop, markups=markups,
                          parameters=parameters, ready=ready, include=nodes["IncludePoints"],
                          exclude=nodes["ExcludePoints"], box=nodes["BoxROI"])
    markups.forget()


def inside(volume, fraction):
    """A world RAS point at ``fraction`` of the volume's extent along each axis."""
    from RefSAM3DSlicerLib.mrml_adapter import world_ijk_to_ras

    dims = np.array(volume.GetImageData().GetDimensions()) - 1
    return tuple(float(c) for c in (world_ijk_to_ras(volume) @ np.array([*(dims * fraction), 1.0]))[:3])


def segment_count(segmentation):
    return segmentation.GetSegmentation().GetNumberOfSegments()


def test_mrml_events_reach_a_python_observer_as_no_event(scene):
    """Why the observers bind the event id: VTK names MRML's own event ids 'NoEvent' for Python."""
    from slicer.util import VTKObservationMixin

    class Recorder(VTKObservationMixin):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_event(self, caller, event):
            self.seen.append(event)

    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    recorder = Recorder()
    recorder.addObserver(points, points.PointPositionDefinedEvent, recorder.on_event)
    place_point(points, (1.0, 2.0, 3.0))
    assert recorder.seen == ["NoEvent"] and points.PointPositionDefinedEvent == 19004
    recorder.removeObservers()


def test_placed_include_and_exclude_clicks_refine_the_same_segment(panel):
    from RefSAM3DSlicerLib.interaction import Click

    panel.loop.start_text(panel.volume, panel.segmentation, "liver")
    segment_id = panel.loop.current.segment_id
    include, exclude = inside(panel.volume, 0.5), inside(panel.volume, 0.1)

    start_placing(panel.scene, panel.include, persistent=True)
    place_point(panel.include, include)
    assert panel.loop.current.clicks == [Click(include, True)]
    assert panel.loop.reports[-1].message.startswith("Refined 'liver' (1 include, 0 exclude click(s))")
    assert panel.include.GetNthControlPointLocked(0)  # sent once; a locked click cannot be dragged away

    place_point(panel.exclude, exclude)
    assert panel.loop.current.clicks == [Click(include, True), Click(exclude, False)]
    assert len(panel.loop.reports) == 3 and not any(report.error for report in panel.loop.reports)
    assert segment_count(panel.segmentation) == 1 and panel.loop.current.segment_id == segment_id


def test_a_click_without_text_makes_a_click_only_segment(panel):
    place_point(panel.include, inside(panel.volume, 0.5))
    assert len(panel.loop.current.clicks) == 1 and panel.loop.current.text is None
    assert not panel.loop.reports[-1].error, panel.loop.reports[-1].message


def test_drawing_a_box_refines_once_and_resizing_refines_again(panel):
    panel.loop.start_text(panel.volume, panel.segmentation, "liver")
    low, high = inside(panel.volume, 0.2), inside(panel.volume, 0.8)

    start_placing(panel.scene, panel.box)
    draw_box(panel.box, low, high)  # the first corner alone is no box yet: one step, after the second corner
    assert len(panel.loop.reports) == 2
    box_low, box_high = panel.loop.current.box
    np.testing.assert_allclose(box_low[:2], low[:2])
    np.testing.assert_allclose(box_high[:2], high[:2])
    assert box_high[2] - box_low[2] > 0  # drawn on one slice, Slicer gives the box a thickness
    assert panel.loop.reports[-1].message.endswith(" s.") and "a box" in panel.loop.reports[-1].message

    resize_box(panel.box, inside(panel.volume, 0.5), (10.0, 12.0, 14.0))
    assert len(panel.loop.reports) == 3
    np.testing.assert_allclose(np.subtract(panel.loop.current.box[1], panel.loop.current.box[0]), (10, 12, 14))
    resize_box(panel.box, inside(panel.volume, 0.5), (10.0, 12.0, 14.0))  # released without a change
    assert len(panel.loop.reports) == 3
    assert segment_count(panel.segmentation) == 1


def test_a_second_box_placed_with_the_place_button_goes_to_the_same_roi_and_the_loop(panel):
    panel.loop.start_text(panel.volume, panel.segmentation, "liver")
    start_placing(panel.scene, panel.box)
    draw_box(panel.box, inside(panel.volume, 0.2), inside(panel.volume, 0.8))
    first = panel.loop.current.box

    start_placing(panel.scene, panel.box)  # the box place widget's own button, with a complete box in the ROI
    target = placement_target(panel.scene)
    assert target is panel.box, "Slicer would have made a new ROI node the module does not observe"
    draw_box(target, inside(panel.volume, 0.4), inside(panel.volume, 0.6))
    assert panel.loop.current.box != first
    np.testing.assert_allclose(panel.loop.current.box[0][:2], inside(panel.volume, 0.4)[:2])
    assert panel.scene.GetNumberOfNodesByClass("vtkMRMLMarkupsROINode") == 1
    assert len(panel.loop.reports) == 3


def test_placing_a_box_given_up_shows_the_objects_box_again(panel):
    from RefSAM3DSlicerLib.prompts_from_markups import box_from_roi

    panel.loop.start_text(panel.volume, panel.segmentation, "liver")
    start_placing(panel.scene, panel.box)
    draw_box(panel.box, inside(panel.volume, 0.2), inside(panel.volume, 0.8))
    steps, box = len(panel.loop.reports), panel.loop.current.box
    start_placing(panel.scene, panel.box)
    assert panel.box.GetNumberOfDefinedControlPoints() == 0  # cleared for the new box
    interaction = panel.scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
    interaction.SetCurrentInteractionMode(interaction.ViewTransform)  # Esc: no new box
    np.testing.assert_allclose(box_from_roi(panel.box), box, atol=1e-6)
    assert len(panel.loop.reports) == steps  # shown again, not sent again


def test_placing_clicks_does_not_clear_the_box(panel):
    panel.loop.start_text(panel.volume, panel.segmentation, "liver")
    start_placing(panel.scene, panel.box)
    draw_box(panel.box, inside(panel.volume, 0.2), inside(panel.volume, 0.8))
    start_placing(panel.scene, panel.include, persistent=True)
    place_point(panel.include, inside(panel.volume, 0.5))
    assert panel.box.GetNumberOfDefinedControlPoints() == 1 and panel.loop.current.box is not None


def test_the_panels_own_edits_are_not_placements(panel):
    from RefSAM3DSlicerLib.interaction import Click

    panel.loop.start_text(panel.volume, panel.segmentation, "liver")
    first, second = inside(panel.volume, 0.5), inside(panel.volume, 0.3)
    place_point(panel.include, first)
    place_point(panel.include, second)
    panel.loop.undo(panel.scene)
    steps = len(panel.loop.reports)
    panel.markups.show(panel.loop.current)  # Undo: the markups show the clicks the object still has
    assert panel.include.GetNumberOfControlPoints() == 1 and panel.include.GetNthControlPointLocked(0)
    assert len(panel.loop.reports) == steps

    third = inside(panel.volume, 0.7)
    place_point(panel.include, third)  # only the new click is sent, not the one shown again
    assert panel.loop.current.clicks == [Click(first, True), Click(third, True)]

    panel.markups.clear()
    assert panel.include.GetNumberOfControlPoints() == 0 and len(panel.loop.reports) == steps + 1


def test_clicks_wait_while_the_model_packages_are_missing(panel):
    panel.ready.value = False
    first = inside(panel.volume, 0.5)
    place_point(panel.include, first)
    assert panel.loop.current is None and not panel.include.GetNthControlPointLocked(0)
    panel.ready.value = True
    place_point(panel.include, inside(panel.volume, 0.3))
    assert [click.ras for click in panel.loop.current.clicks] == [first, inside(panel.volume, 0.3)]


def test_nodes_are_made_once_per_scene_and_forgotten_on_request(panel):
    from RefSAM3DSlicerLib.prompt_markups import PromptMarkups

    other = PromptMarkups(panel.loop, lambda: (panel.volume, panel.segmentation))
    again = other.ensure_nodes(panel.parameters, panel.scene)
    other.forget()
    assert again == {"IncludePoints": panel.include, "ExcludePoints": panel.exclude, "BoxROI": panel.box}
    panel.markups.forget()
    place_point(panel.include, inside(panel.volume, 0.5))
    assert panel.loop.current is None
