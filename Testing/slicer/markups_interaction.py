"""What Slicer's markups widgets do to MRML when a user places and edits markups in a view, without the view.

Each step makes the MRML calls Slicer's own code makes, so the nodes fire the events a real session fires:
- ``start_placing``: qSlicerMarkupsPlaceWidget::setPlaceModeEnabled(true): the Markups logic makes the node the
  active place node, then the interaction node enters Place mode.
- ``place_point``: vtkSlicerMarkupsWidget: a preview point follows the mouse (UpdateActiveControlPointWorld with
  PositionPreview), a click turns it into a placed point (PositionDefined); without place-mode persistence the
  interaction node returns to ViewTransform once the markup has its required points.
- ``draw_box``: two placed corners on a ROI (vtkMRMLMarkupsROINode then turns them into a centred box).
- ``resize_box``: vtkSlicerMarkupsInteractionWidget's scale handles: PointStartInteractionEvent, centre and size
  set while dragging, PointEndInteractionEvent on release.
- ``placement_target``: vtkMRMLMarkupsDisplayableManager::GetWidgetForPlacement: the active place node, unless it
  already holds its maximum number of points -- then Slicer adds a new node of that class and places into that.
"""
from __future__ import annotations

IDENTITY_ORIENTATION = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def _interaction_and_selection(scene):
    return scene.GetNodeByID("vtkMRMLInteractionNodeSingleton"), scene.GetNodeByID("vtkMRMLSelectionNodeSingleton")


def start_placing(scene, node, persistent: bool = False) -> None:
    import slicer

    interaction, _ = _interaction_and_selection(scene)
    slicer.modules.markups.logic().SetActiveList(node)
    interaction.SetPlaceModePersistence(int(persistent))
    interaction.SetCurrentInteractionMode(interaction.Place)


def placement_target(scene):
    """The node a click in a view goes into while placing (a new one when the active node is full)."""
    import slicer

    _, selection = _interaction_and_selection(scene)
    active = scene.GetNodeByID(selection.GetActivePlaceNodeID() or "")
    if active is not None:
        maximum = active.GetMaximumNumberOfControlPoints()
        if not (maximum >= 0 and active.GetNumberOfDefinedControlPoints() >= maximum):
            return active
    created = slicer.modules.markups.logic().AddNewMarkupsNode(selection.GetActivePlaceNodeClassName())
    selection.SetReferenceActivePlaceNodeID(created.GetID())
    return created


class Mouse:
    """The mouse over a view while placing into ``node``: moves show a preview point, a click places it."""

    def __init__(self, node) -> None:
        import slicer

        self.node = node
        self.preview = -1
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
        self._event_data = slicer.vtkMRMLInteractionEventData

    def move(self, ras, status=None) -> None:
        event = self._event_data()
        event.SetWorldPosition([float(c) for c in ras])
        index = self.preview if self.preview >= 0 else self.node.GetControlPointPlacementStartIndex()
        status = self.node.PositionPreview if status is None else status
        self.preview = self.node.GetDisplayNode().UpdateActiveControlPointWorld(
            index, event, IDENTITY_ORIENTATION, None, None, status)

    def click(self, ras) -> None:
        self.move(ras)  # the mouse is where it clicks: the preview got there first
        self.move(ras, self.node.PositionDefined)
        self.preview = -1
        interaction, _ = _interaction_and_selection(self.node.GetScene())
        required = self.node.GetRequiredNumberOfControlPoints()
        complete = (self.node.GetNumberOfControlPoints() >= required
                    and self.node.GetNumberOfUndefinedControlPoints() == 0)
        if not interaction.GetPlaceModePersistence() and (required <= 0 or complete):
            interaction.SetCurrentInteractionMode(interaction.ViewTransform)


def place_point(node, ras) -> None:
    mouse = Mouse(node)
    mouse.move([c + 3.0 for c in ras])  # the preview follows the mouse to the spot
    mouse.click(ras)


def draw_box(roi_node, corner_a, corner_b) -> None:
    mouse = Mouse(roi_node)
    mouse.move(corner_a)
    mouse.click(corner_a)
    mouse.move([(a + b) / 2 for a, b in zip(corner_a, corner_b)])
    mouse.click(corner_b)


def resize_box(roi_node, center, size) -> None:
    roi_node.InvokeCustomModifiedEvent(roi_node.PointStartInteractionEvent)
    roi_node.SetCenterWorld([float(c) for c in center])
    roi_node.SetSize([float(s) for s in size])
    roi_node.InvokeCustomModifiedEvent(roi_node.PointEndInteractionEvent)
