"""Where a located region's delineation starts: the object near the region's box, not the box itself.

A registered reference places an organ within a centimetre or two, and a box that far off makes the decoder
draw part of the organ and part of its neighbour (left kidney on the held-out CT: the region's box 17 mm off,
Dice 0.51). So on the region's widest slice boxes around the region's own are tried -- shifted by a quarter
of its size each way and grown -- and the mask that looks most like an object (the decoder's IoU estimate
times the image edge along its outline, as for a click) and agrees with the region (Dice with the region's
coarse mask on that slice) wins.
"""
from __future__ import annotations

import numpy as np

from .click_object import edge_strength, overlap_dice
from .slice_segmenter import SlicePrompt, SliceSegmenter

SHIFT = 0.25  # of the box's size, each way
SCALES = (1.0, 1.3)
REGION_AGREEMENT_POWER = 1.0


def candidate_boxes(box: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    centre = np.asarray([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    half = np.asarray([(box[2] - box[0]) / 2, (box[3] - box[1]) / 2])
    out = []
    for scale in SCALES:
        for dr, dc in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
            c = centre + np.asarray([dr, dc]) * SHIFT * 2 * half
            h = half * scale
            out.append(np.asarray([max(0.0, c[0] - h[0]), max(0.0, c[1] - h[1]), min(shape[0] - 1.0, c[0] + h[0]),
                                   min(shape[1] - 1.0, c[1] + h[1])]))
    return out


def start_on_region(segmenter: SliceSegmenter, view, window, z: int, box: np.ndarray,
                    region_slice: np.ndarray) -> tuple[np.ndarray, float] | None:
    """-> (mask, IoU estimate) of the best candidate on slice z, or None when no candidate gives a mask."""
    boxes = candidate_boxes(box, segmenter.shape)
    results = segmenter.segment(z, view, window, [SlicePrompt(box=b) for b in boxes])
    from scipy import ndimage

    gradient = ndimage.gaussian_gradient_magnitude(window.apply(segmenter.embeddings.slices.slice(z)), 1.0)
    best = None
    for result in results:
        mask = result[0].mask
        if not mask.any():
            continue
        agreement = overlap_dice(mask, region_slice) if region_slice.any() else 1.0
        score = result[0].iou * edge_strength(mask, gradient) * agreement ** REGION_AGREEMENT_POWER
        if best is None or score > best[0]:
            best = (score, mask, result[0].iou)
    return None if best is None else (best[1], best[2])
