"""Prompt-level undo: each Segment press records what it changed, and Undo puts exactly that back.

Slicer's Segment Editor undo snapshots whole segmentations (memory blows up on big volumes, Slicer #6982),
so like SlicerNNInteractive we keep our own small history: the IDs of segments a prompt added (Undo removes
them) and, for a replaced segment, its former voxels and metadata (Undo restores them). Voxels are kept as
the segment's own binary labelmap at its effective extent, in the segmentation's coordinates, so a restore
is exact and needs neither the source volume nor a full-size array.

The Segment Editor and this undo must not corrupt each other: every step also keeps a fingerprint of each
segment it wrote (segment_fingerprint.py). If that segment's voxels were changed afterwards (an editor
effect, a script), Undo **refuses** and keeps the step, saying which segment and how to proceed (undo the
edit in the Segment Editor first, then Undo here works again; or keep editing -- the next RefSAM3D step
starts from the edited voxels). A rename or recolour in the segments table is kept by Undo.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .segment_fingerprint import SegmentFingerprint


@dataclass
class SegmentSnapshot:
    """One existing segment as it was before a prompt replaced it."""

    segment_id: str
    metadata: object  # a vtkSegment holding name, colour and every tag (DeepCopyMetadata)
    labelmap: object  # vtkOrientedImageData with this segment's voxels only

    @classmethod
    def take(cls, segmentation_node, segment_id: str) -> SegmentSnapshot:
        import slicer

        segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
        if segment is None:
            raise KeyError(f"no segment {segment_id!r} in '{segmentation_node.GetName()}'")
        metadata = slicer.vtkSegment()
        metadata.DeepCopyMetadata(segment)
        labelmap = slicer.vtkOrientedImageData()
        segmentation_node.GetBinaryLabelmapRepresentation(segment_id, labelmap)
        return cls(segment_id, metadata, labelmap)

    def restore(self, segmentation_node, keep_identity: bool = False) -> None:
        """Put the voxels and tags back; ``keep_identity`` keeps the segment's current name and colour."""
        import slicer

        segment = segmentation_node.GetSegmentation().GetSegment(self.segment_id)
        if segment is None:
            raise KeyError(self.segment_id)
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        if not logic.SetBinaryLabelmapToSegment(self.labelmap, segmentation_node, self.segment_id,
                                                logic.MODE_REPLACE):
            raise RuntimeError(f"could not restore the voxels of segment '{self.metadata.GetName()}'")
        label_value = segment.GetLabelValue()  # where the voxels now live in their layer; metadata must not move it
        name, color = segment.GetName(), segment.GetColor()
        segment.DeepCopyMetadata(self.metadata)
        segment.SetLabelValue(label_value)
        if keep_identity:
            segment.SetName(name)
            segment.SetColor(*color)


@dataclass
class UndoStep:
    """What one prompt changed in one segmentation."""

    segmentation_node_id: str
    description: str
    added_segment_ids: list[str] = field(default_factory=list)
    replaced: list[SegmentSnapshot] = field(default_factory=list)
    volume_node_id: str | None = None  # the grid the results were written on
    written: dict[str, SegmentFingerprint] = field(default_factory=dict)  # segment ID -> state right after

    def edited_since(self, segmentation_node, volume_node) -> list[str]:
        """Names of segments this step wrote whose voxels were changed afterwards (still present ones only)."""
        segmentation = segmentation_node.GetSegmentation()
        edited = []
        for segment_id, fingerprint in self.written.items():
            segment = segmentation.GetSegment(segment_id)
            if segment is not None and fingerprint.voxels_changed(segmentation_node, volume_node):
                edited.append(segment.GetName())
        return edited

    @property
    def empty(self) -> bool:
        return not self.added_segment_ids and not self.replaced


class UndoStack:
    """The last ``depth`` prompt steps, newest on top."""

    def __init__(self, depth: int = 10) -> None:
        self._steps: deque[UndoStep] = deque(maxlen=max(1, int(depth)))
        self.last_undone: UndoStep | None = None  # the step the latest undo() reverted, None if it reverted none

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def can_undo(self) -> bool:
        return bool(self._steps)

    @property
    def newest(self) -> UndoStep | None:
        return self._steps[-1] if self._steps else None

    @property
    def next_description(self) -> str:
        return self._steps[-1].description if self._steps else ""

    def set_depth(self, depth: int) -> None:
        self._steps = deque(self._steps, maxlen=max(1, int(depth)))

    def push(self, step: UndoStep) -> None:
        if not step.empty:
            self._steps.append(step)

    def clear(self) -> None:
        self._steps.clear()

    def undo(self, scene) -> str:
        """Revert the newest step in ``scene``; returns what was undone, for the status line.

        Segments the user deleted or a segmentation removed since are skipped (and said so), never an error.
        A segment whose voxels were edited after the step is never overwritten: the step stays and nothing changes.
        """
        self.last_undone = None
        if not self._steps:
            return "Nothing to undo."
        step = self._steps[-1]
        node = scene.GetNodeByID(step.segmentation_node_id) if scene is not None else None
        if node is None:
            self._steps.pop()
            return f"Cannot undo {step.description}: its segmentation was removed."
        volume = scene.GetNodeByID(step.volume_node_id) if step.volume_node_id else None
        edited = step.edited_since(node, volume)
        if edited:
            names = ", ".join(f"'{name}'" for name in edited)
            return (f"Not undone: {names} was edited after {step.description} (e.g. in the Segment Editor); "
                    "undo that edit there first, or keep it and go on.")
        self._steps.pop()
        self.last_undone = step
        segmentation = node.GetSegmentation()
        missing = []
        for segment_id in step.added_segment_ids:
            if segmentation.GetSegment(segment_id) is None:
                missing.append(segment_id)
            else:
                segmentation.RemoveSegment(segment_id)
        for snapshot in reversed(step.replaced):
            fingerprint = step.written.get(snapshot.segment_id)
            segment = segmentation.GetSegment(snapshot.segment_id)
            keep = fingerprint is not None and segment is not None and fingerprint.identity_changed(segment)
            try:
                snapshot.restore(node, keep_identity=keep)
            except KeyError:
                missing.append(snapshot.metadata.GetName())
        note = f" ({len(missing)} segment(s) had already been deleted)" if missing else ""
        return f"Undid {step.description}{note}."
