"""One include click, no box -> the object under it on the click's slice.

LiteMedSAM was trained on boxes only, so a bare point is a weak prompt for it. A click does say where the
object is, just not how big: so square boxes of growing size are centred on it (a sqrt(2) ladder from 8 to
140 mm half-width, all decoded as one batch) and the object is the first mask that holds the click and lies
wholly inside its box -- a mask that runs into its box's border is cut by the box, and the object is larger
(nnInteractive's AutoZoom reasoning, on a 2D ladder). A mask that a larger box reproduces is preferred (the
box is then not shaping it), and when every mask is cut the decoder's IoU estimate decides.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .slice_segmenter import SlicePrompt, SliceSegmenter

HALF_WIDTHS_MM = (8.0, 11.0, 16.0, 22.0, 32.0, 45.0, 64.0, 90.0, 128.0)
STABLE_IOU = 0.8  # a larger box giving a mask this similar: the box no longer shapes it
BORDER_PX = 1.0  # a mask pixel this close to its box's edge touches it


@dataclass
class ClickObject:
    mask: np.ndarray  # bool (rows, cols)
    iou: float
    box: np.ndarray  # the box that produced it (r0, c0, r1, c1)


def square_box(centre_rc: np.ndarray, half_mm: float, pixel_mm: tuple[float, float],
               shape: tuple[int, int]) -> np.ndarray:
    hr, hc = half_mm / pixel_mm[0], half_mm / pixel_mm[1]
    return np.asarray([max(0.0, centre_rc[0] - hr), max(0.0, centre_rc[1] - hc),
                       min(shape[0] - 1.0, centre_rc[0] + hr), min(shape[1] - 1.0, centre_rc[1] + hc)])


def touches_border(mask: np.ndarray, box: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether the mask reaches a side of the box that is not the image's own edge."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return False
    sides = ((rows[0] <= box[0] + BORDER_PX, box[0] > 0.5), (cols[0] <= box[1] + BORDER_PX, box[1] > 0.5),
             (rows[-1] >= box[2] - BORDER_PX, box[2] < shape[0] - 1.5),
             (cols[-1] >= box[3] - BORDER_PX, box[3] < shape[1] - 1.5))
    return any(reach and inner for reach, inner in sides)


def component_at(mask: np.ndarray, rc: tuple[int, int]) -> np.ndarray:
    labels, _ = ndimage.label(mask)
    value = labels[rc]
    return labels == value if value else np.zeros_like(mask)


def object_at_click(segmenter: SliceSegmenter, view, window, z: int, click_rc: np.ndarray,
                    pixel_mm: tuple[float, float], negatives: np.ndarray | None = None) -> ClickObject | None:
    """The object under an include click on slice ``z``; ``negatives`` (N, 2) exclude clicks on that slice."""
    shape = segmenter.shape
    cell = tuple(int(v) for v in np.clip(np.round(click_rc), 0, np.asarray(shape) - 1))
    boxes = [square_box(np.asarray(click_rc, float), h, pixel_mm, shape) for h in HALF_WIDTHS_MM]
    points = np.asarray([click_rc], dtype=float)
    labels = np.asarray([1])
    if negatives is not None and len(negatives):
        points = np.concatenate([points, np.asarray(negatives, float).reshape(-1, 2)])
        labels = np.concatenate([labels, np.zeros(len(points) - 1, dtype=int)])
    prompts = [SlicePrompt(box=b, points=points, labels=labels) for b in boxes]
    candidates = []
    for box, result in zip(boxes, segmenter.segment(z, view, window, prompts)):
        mask = component_at(result[0].mask, cell)
        candidates.append(ClickObject(mask, result[0].iou, box) if mask.any() else None)
    return choose(candidates, shape)


def choose(candidates: list[ClickObject | None], shape: tuple[int, int]) -> ClickObject | None:
    """Smallest enclosed mask that the next larger box reproduces; else the smallest enclosed one; else the
    most confident."""
    enclosed = [i for i, c in enumerate(candidates) if c is not None and not touches_border(c.mask, c.box, shape)]
    for i in enclosed:
        nxt = candidates[i + 1] if i + 1 < len(candidates) else None
        if nxt is not None and overlap(candidates[i].mask, nxt.mask) >= STABLE_IOU:
            return candidates[i]
    if enclosed:
        return candidates[enclosed[0]]
    valid = [c for c in candidates if c is not None]
    return max(valid, key=lambda c: c.iou) if valid else None


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0
