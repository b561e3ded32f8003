"""What a segment looked like right after RefSAM3D wrote it, to notice later edits made elsewhere.

The Segment Editor (or a script) may change a segment after a RefSAM3D step. Undoing that step blindly
would destroy the user's edit, so each step remembers a fingerprint of every segment it wrote: the
labelmap's modification time (a cheap "nothing happened" test) and a digest of the voxels RefSAM3D wrote
(the exact test, used only when the time stamp moved -- e.g. a neighbour in a shared layer was edited).
Name and colour are remembered too, so a rename in the segments table survives an undo.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


def mask_digest(mask: np.ndarray) -> str:
    """A short, exact identity of a boolean mask (shape included)."""
    packed = np.packbits(np.asarray(mask, dtype=bool), axis=None)
    return hashlib.sha1(packed.tobytes() + str(tuple(mask.shape)).encode()).hexdigest()


def labelmap_mtime(segmentation_node, segment_id: str) -> int:
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        return -1
    labelmap = segment.GetRepresentation("Binary labelmap")
    return -1 if labelmap is None else int(labelmap.GetMTime())


@dataclass(frozen=True)
class SegmentFingerprint:
    segment_id: str
    mtime: int
    digest: str
    name: str
    color: tuple[float, float, float]

    @classmethod
    def take(cls, segmentation_node, segment_id: str, written_mask: np.ndarray) -> SegmentFingerprint:
        """Right after writing ``written_mask`` (bool [i, j, k] on the volume grid) into the segment."""
        segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
        return cls(segment_id, labelmap_mtime(segmentation_node, segment_id), mask_digest(written_mask),
                   segment.GetName(), tuple(round(float(c), 6) for c in segment.GetColor()))

    def voxels_changed(self, segmentation_node, volume_node) -> bool:
        """True when the segment's voxels differ from what RefSAM3D wrote (or it is gone)."""
        from .mrml_adapter import read_mask

        if segmentation_node.GetSegmentation().GetSegment(self.segment_id) is None:
            return True
        if labelmap_mtime(segmentation_node, self.segment_id) == self.mtime:
            return False
        if volume_node is None or volume_node.GetScene() is None:
            return True  # cannot compare on the grid it was written on: assume the worst
        return mask_digest(read_mask(segmentation_node, self.segment_id, volume_node)) != self.digest

    def identity_changed(self, segment) -> bool:
        """The user renamed or recoloured the segment since RefSAM3D wrote it."""
        color = tuple(round(float(c), 6) for c in segment.GetColor())
        return segment.GetName() != self.name or color != self.color
