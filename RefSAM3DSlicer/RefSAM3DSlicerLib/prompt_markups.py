"""The panel's prompt markups (an include list, an exclude list, one box ROI) and the events Slicer fires on them,
turned into interactive-loop actions.

Slicer's markups widgets report a placed control point with ``PointPositionDefinedEvent`` and the end of a drag or
a handle resize with ``PointEndInteractionEvent``. Both are MRML's own event ids, which VTK hands a Python observer
as the string "NoEvent"; so every observer here is bound to the id it was added for, and the event argument is
never compared. A click is sent once: it is locked when sent (a locked click cannot be dragged away from what the
model saw), so every placed, unlocked point of a list is a new click. A box is sent when the ROI holds a complete
box (both corners placed, or resized or moved afterwards) that differs from the box sent last.

Slicer's place widget makes a new ROI node, instead of using this one, when the active ROI already holds a complete
box. So when placing starts on this ROI while it holds a box, the box is cleared first: the new box is drawn into
this node and reaches the loop ("a new box replaces the old one"). If placing ends without a new box, the current
object's box is shown again: the markups always show what the model is given.
"""
from __future__ import annotations

import contextlib

from slicer.util import VTKObservationMixin

from .prompts_from_markups import box_from_roi, set_box, set_points

INCLUDE, EXCLUDE, BOX = "IncludePoints", "ExcludePoints", "BoxROI"
PROMPT_NODE_ROLES = {  # parameter-node role -> (node class, name, colour)
    INCLUDE: ("vtkMRMLMarkupsFiducialNode", "RefSAM3D include", (0.2, 0.85, 0.35)),
    EXCLUDE: ("vtkMRMLMarkupsFiducialNode", "RefSAM3D exclude", (0.95, 0.25, 0.25)),
    BOX: ("vtkMRMLMarkupsROINode", "RefSAM3D box", (1.0, 0.85, 0.2)),
}
INTERACTION_NODE_ID = "vtkMRMLInteractionNodeSingleton"
SELECTION_NODE_ID = "vtkMRMLSelectionNodeSingleton"


def roi_holds_a_box(roi_node) -> bool:
    """Every corner placed and no side of zero length (while the first corner is placed, the size is zero)."""
    defined = roi_node.GetNumberOfDefinedControlPoints()
    size = roi_node.GetSize()  # the no-argument form: the fill-a-list form is not wrapped for Python
    return 0 < defined and defined >= roi_node.GetRequiredNumberOfControlPoints() and min(size) > 0


def unsent_clicks(points_node) -> list[int]:
    """Indices of the placed points not sent yet (sent ones are locked)."""
    return [index for index in range(points_node.GetNumberOfControlPoints())
            if points_node.GetNthControlPointPositionStatus(index) == points_node.PositionDefined
            and not points_node.GetNthControlPointLocked(index)]


class PromptMarkups(VTKObservationMixin):
    """Observes the prompt markups of one scene and forwards each finished placement to the loop.

    ``selected_nodes()`` gives the panel's (volume, segmentation); ``run(action)`` calls an action (the panel shows
    its errors); ``ready()`` says whether the model's packages are installed (the panel offers to install them).
    """

    def __init__(self, loop, selected_nodes, run=None, ready=None) -> None:
        super().__init__()
        self.loop = loop
        self.selected_nodes = selected_nodes
        self.run = run or (lambda action: action())
        self.ready = ready or (lambda: True)
        self.nodes: dict = {}
        self._muted = False
        self._last_box = None
        self._interaction_node = None
        self._selection_node = None

    # ------------------------------------------------------------------ nodes
    def ensure_nodes(self, parameter_node, scene) -> dict:
        """The scene's include list, exclude list and box (made once, remembered in the parameter node), observed."""
        self.forget()
        for role, (class_name, name, color) in PROMPT_NODE_ROLES.items():
            node = parameter_node.GetNodeReference(role)
            if node is None:
                node = scene.AddNewNodeByClass(class_name, name)
                node.CreateDefaultDisplayNodes()
                node.GetDisplayNode().SetSelectedColor(*color)
                node.GetDisplayNode().SetColor(*color)
                parameter_node.SetNodeReferenceID(role, node.GetID())
            self.nodes[role] = node
            for event_id in (node.PointPositionDefinedEvent, node.PointEndInteractionEvent):
                self.addObserver(node, event_id, self._observer_for(event_id))
        self._interaction_node = scene.GetNodeByID(INTERACTION_NODE_ID)
        self._selection_node = scene.GetNodeByID(SELECTION_NODE_ID)
        if self._interaction_node is not None and self._selection_node is not None:
            self.addObserver(self._interaction_node, self._interaction_node.InteractionModeChangedEvent,
                             self._on_placement_changed)
            self.addObserver(self._selection_node, self._selection_node.ActivePlaceNodeIDChangedEvent,
                             self._on_placement_changed)
        self._last_box = box_from_roi(self.nodes[BOX]) if roi_holds_a_box(self.nodes[BOX]) else None
        return dict(self.nodes)

    def forget(self) -> None:
        """Stop observing (the scene closed, or the module is cleaned up)."""
        self.removeObservers()
        self.nodes = {}
        self._interaction_node = self._selection_node = None
        self._last_box = None

    # ------------------------------------------------------------------ the panel's own edits
    @contextlib.contextmanager
    def muted(self):
        """Edits made inside (by the panel itself) are not the user's placements: no loop action."""
        previous, self._muted = self._muted, True
        try:
            yield
        finally:
            self._muted = previous

    def clear(self) -> None:
        """No clicks and no box on screen: a new object starts from none."""
        with self.muted():
            for node in self.nodes.values():
                node.RemoveAllControlPoints()
        self._last_box = None

    def show(self, loop_object) -> None:
        """Show exactly the clicks and the box ``loop_object`` has (after Undo); clicks locked: they were sent."""
        clicks = loop_object.clicks if loop_object is not None else []
        with self.muted():
            for role, positive in ((INCLUDE, True), (EXCLUDE, False)):
                node = self.nodes.get(role)
                if node is None:
                    continue
                set_points(node, [click.ras for click in clicks if click.positive == positive])
                for index in range(node.GetNumberOfControlPoints()):
                    node.SetNthControlPointLocked(index, True)
            box = self.nodes.get(BOX)
            if box is not None:
                set_box(box, loop_object.box if loop_object is not None else None)
                self._last_box = box_from_roi(box) if roi_holds_a_box(box) else None

    # ------------------------------------------------------------------ Slicer's events
    def _observer_for(self, event_id):
        def observe(caller, _event_name):  # the name is "NoEvent" for MRML's ids: use the id bound here
            self.on_markup_event(caller, event_id)

        return observe

    def on_markup_event(self, node, event_id: int) -> None:
        """A control point was placed (``PointPositionDefinedEvent``) or a drag/resize ended on ``node``."""
        if self._muted or node not in self.nodes.values():
            return
        if node is self.nodes.get(BOX):
            self._box_changed(node)
        elif event_id == node.PointPositionDefinedEvent:  # a sent click is locked: it is never dragged
            self._clicks_placed(node)

    def _box_changed(self, roi_node) -> None:
        if not roi_holds_a_box(roi_node):
            return  # the first corner of a new box: wait for the second
        box = box_from_roi(roi_node)
        if box == self._last_box or not self.ready():
            return
        self._last_box = box
        volume, segmentation = self.selected_nodes()
        self.run(lambda: self.loop.set_box(volume, segmentation, box))

    def _clicks_placed(self, points_node) -> None:
        new = unsent_clicks(points_node)
        if not new or not self.ready():
            return  # not ready: the click stays unsent and goes with the next one
        volume, segmentation = self.selected_nodes()
        positive = points_node is self.nodes.get(INCLUDE)
        for index in new:
            points_node.SetNthControlPointLocked(index, True)
            position = [0.0, 0.0, 0.0]
            points_node.GetNthControlPointPositionWorld(index, position)
            self.run(lambda ras=tuple(position): self.loop.add_click(volume, segmentation, ras, positive))

    def _on_placement_changed(self, _caller, _event_name) -> None:
        """Placing starts on the box ROI while it holds a box: clear it, so Slicer places into it, not a new ROI.
        Placing ends and no new box was drawn: show the current object's box again."""
        box = self.nodes.get(BOX)
        if box is None:
            return
        placing = self._interaction_node.GetCurrentInteractionMode() == self._interaction_node.Place
        if placing and self._selection_node.GetActivePlaceNodeID() == box.GetID() and roi_holds_a_box(box):
            with self.muted():
                box.RemoveAllControlPoints()
            self._last_box = None
        elif not placing and not roi_holds_a_box(box):
            current = self.loop.current
            if current is not None and current.box is not None:
                with self.muted():
                    box.RemoveAllControlPoints()  # e.g. a first corner left behind
                    set_box(box, current.box)
                self._last_box = box_from_roi(box)
