"""From one delineated slice to its neighbours, one slice at a time, until the object ends.

MedSAM's own 3D rule, kept where it works: the next slice is prompted with the previous slice's mask box plus a
few pixels (measured at the decoder's 256 px scale, the scale its training jitter was drawn at), clipped to the
user's box when there is one. Changed where it fails (``../shared/research/delineation-anchors.md``): an empty
mask stops the walk instead of falling back to the whole 3D box (which paints false positives at the organ's
ends); the box's end slices are segmented too; and without a box -- a click has no z-limits -- the walk also
stops when the decoder's IoU head loses confidence, when the mask jumps (little overlap with the previous one)
or balloons, or when its mean CT number drifts away from the start's: each is a sign that the decoder has
moved on to a neighbouring structure.

Points (the user's clicks, projected onto nearby slices by the caller) ride along with the box on each slice.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .slice_segmenter import SliceMask, SlicePrompt, SliceSegmenter

Box = np.ndarray  # (r0, c0, r1, c1) inclusive slice pixels


@dataclass(frozen=True)
class StopRules:
    margin_px: float = 4.0  # box margin at the decoder's input scale (LiteMedSAM trained with 0-5 px jitter)
    min_iou: float | None = None  # the decoder's IoU estimate below this: the object has ended
    max_growth: float | None = None  # area above this times the previous slice's: leaked into a neighbour
    min_overlap: float | None = None  # less of the new mask than this on the previous mask: jumped elsewhere
    max_hu_shift: float | None = None  # mean value this far from the start slice's: another tissue
    min_pixels: int = 3  # a mask of fewer slice pixels is treated as empty

    @classmethod
    def boxed(cls) -> "StopRules":
        """Inside a user's box: the box bounds the walk; stop only when nothing is left."""
        return cls(min_iou=0.35)

    @classmethod
    def open(cls) -> "StopRules":
        """No box (a click, a correction): the object must announce its own end."""
        return cls(min_iou=0.55, max_growth=1.6, min_overlap=0.5, max_hu_shift=60.0)


def bounding_box(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(1))
    if not len(rows):
        return None
    cols = np.flatnonzero(mask.any(0))
    return np.asarray([rows[0], cols[0], rows[-1], cols[-1]], dtype=float)


def clip_box(box: Box, limit: Box | None) -> Box:
    if limit is None:
        return box
    return np.asarray([max(box[0], limit[0]), max(box[1], limit[1]), min(box[2], limit[2]), min(box[3], limit[3])])


def mean_value(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def propagate(segmenter: SliceSegmenter, view, window, start_z: int, start_mask: np.ndarray, direction: int,
              z_limits: tuple[int, int], rules: StopRules, limit: Box | None = None,
              points_at: Callable[[int], tuple[np.ndarray, np.ndarray] | None] | None = None,
              keep_going: Callable[[int, SliceMask], bool] | None = None,
              raw_slice: Callable[[int], np.ndarray] | None = None) -> dict[int, SliceMask]:
    """Walk from ``start_z`` (exclusive) in ``direction`` within ``z_limits`` (inclusive) -> masks per slice.

    ``points_at(z)`` gives (points (N, 2), labels) to add on slice z; ``keep_going(z, result)`` may end the walk
    after slice z is stored (corrections stop where they meet the earlier result); ``raw_slice(z)`` gives the
    slice's values for the intensity rule."""
    out: dict[int, SliceMask] = {}
    previous = start_mask
    margin = rules.margin_px / max(view.scale_row, view.scale_col)
    reference = (mean_value(raw_slice(start_z), start_mask)
                 if rules.max_hu_shift is not None and raw_slice is not None else None)
    z = start_z + direction
    while z_limits[0] <= z <= z_limits[1]:
        box = bounding_box(previous)
        if box is None:
            break
        box = clip_box(box + np.asarray([-margin, -margin, margin, margin]), limit)
        if box[2] < box[0] or box[3] < box[1]:
            break
        prompt = SlicePrompt(box=box)
        extra = points_at(z) if points_at is not None else None
        if extra is not None and len(extra[0]):
            prompt.points, prompt.labels = extra
        result = segmenter.segment(z, view, window, [prompt])[0][0]
        mask = result.mask
        if limit is not None:
            mask = mask & inside_box(limit, mask.shape)
        area, before = int(mask.sum()), int(previous.sum())
        if area < rules.min_pixels:
            break
        if rules.min_iou is not None and result.iou < rules.min_iou:
            break
        if rules.max_growth is not None and area > rules.max_growth * before + 20:
            break
        if rules.min_overlap is not None and (mask & previous).sum() < rules.min_overlap * area:
            break
        if reference is not None and abs(mean_value(raw_slice(z), mask) - reference) > rules.max_hu_shift:
            break
        out[z] = SliceMask(mask, result.iou)
        if keep_going is not None and not keep_going(z, out[z]):
            break
        previous = mask
        z += direction
    return out


def inside_box(box: Box, shape: tuple[int, int]) -> np.ndarray:
    keep = np.zeros(shape, dtype=bool)
    r0, c0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    keep[r0:int(np.ceil(box[2])) + 1, c0:int(np.ceil(box[3])) + 1] = True
    return keep
