"""Which volume and segmentation the panel works on, kept in the module's parameter node (saved with the scene).

Restoring the panel from the parameter node must read BOTH stored nodes before selecting either: selecting
the volume makes the panel store its current selection, which would overwrite the stored segmentation with
the one still shown (the defect this file fixes by its order of operations).
"""
from __future__ import annotations

INPUT_VOLUME = "InputVolume"
OUTPUT_SEGMENTATION = "OutputSegmentation"


def stored_selection(parameter_node) -> tuple[object | None, object | None]:
    return parameter_node.GetNodeReference(INPUT_VOLUME), parameter_node.GetNodeReference(OUTPUT_SEGMENTATION)


def store_selection(parameter_node, volume_node, segmentation_node) -> None:
    parameter_node.SetNodeReferenceID(INPUT_VOLUME, volume_node.GetID() if volume_node is not None else None)
    parameter_node.SetNodeReferenceID(OUTPUT_SEGMENTATION,
                                      segmentation_node.GetID() if segmentation_node is not None else None)


def restore_selection(parameter_node, select_volume, select_segmentation) -> tuple[object | None, object | None]:
    """Show the stored nodes through the two selector callbacks (which may write back); returns them."""
    volume, segmentation = stored_selection(parameter_node)  # both first: the callbacks may overwrite them
    if volume is not None:
        select_volume(volume)
    if segmentation is not None:
        select_segmentation(segmentation)
    if volume is not None or segmentation is not None:
        store_selection(parameter_node, volume, segmentation)  # whatever the callbacks wrote meanwhile
    return volume, segmentation
