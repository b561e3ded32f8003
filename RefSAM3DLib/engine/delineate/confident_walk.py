"""Two walks of one object, and which the decoder trusts slice by slice.

The decoder's IoU estimate rates every slice a walk decodes, and along a walk it is a fair judge of which of two
masks of the same slice is the object: where a walk has lost half of a kidney the estimate falls to 0.66-0.8, and a
walk that holds the whole kidney there scores 0.86-0.93. Two rules use it:

* **merge**: of two walks of one prompt, each slice keeps the mask of the walk the decoder is more confident about
  there (a box walk's second start, ``box_delineation``; a click's re-seeded walk, below, judged only on the slices
  it reached: ``merge_reseeded``);
* **re-seed**: a click's walk starts on the clicked slice, which is where the user looked, not where the object is
  clearest. The simulator clicks a kidney where it is deepest -- at its hilum, a C-shaped cross-section; the
  decoder drew one arm of the C (estimate 0.74), and every slice after inherited the half-kidney (IoU with the
  label 0.2-0.5 over ten slices). A text region's walk starts on the region's widest slice, a registration's
  guess, likewise. Where the walk found a slice far more confident than its start, it walks again from there, and
  the two walks merge (first clicks: ``click_edits``; text regions: ``box_delineation.reseeded``).
"""
from __future__ import annotations

import numpy as np

RESEED_GAIN = 0.1  # a decoded slice this much more confident than the start: the walk starts again there ...
RESEED_AREA = 0.5  # ... when its mask is at least this share of the walk's widest (an object's tip is small and
# says little of its body)


def confidence(iou: dict[int, float], z: int) -> float:
    """The decoder's estimate on slice z, or on the nearest decoded slice (slices between decoded ones are NaN);
    -1 for a walk with none."""
    known = [(abs(k - z), v) for k, v in iou.items() if not np.isnan(v)]
    return min(known)[1] if known else -1.0


def merge_by_confidence(mask: np.ndarray, iou: dict[int, float], other_mask: np.ndarray,
                        other_iou: dict[int, float], where: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, float]]:
    """Two walks (bool (z, row, col) and their estimates per slice) -> per slice the more confident one's mask;
    ``where`` (bool per slice): the only slices judged (elsewhere the first walk stands)."""
    merged, estimates = mask.copy(), dict(iou)
    judged = other_mask.any(axis=(1, 2)) | mask.any(axis=(1, 2))
    if where is not None:
        judged &= where
    for z in np.flatnonzero(judged):
        if confidence(other_iou, z) > confidence(iou, z):
            merged[z] = other_mask[z]
            estimates[z] = other_iou.get(z, float("nan"))
    return merged, estimates


def merge_reseeded(mask: np.ndarray, iou: dict[int, float], other_mask: np.ndarray,
                   other_iou: dict[int, float]) -> tuple[np.ndarray, dict[int, float]]:
    """A walk and its re-seeded walk (``other``) -> merged on the slices the re-seeded walk reached; the others keep
    the first walk's mask. Judged everywhere, a slice the second walk never reached took its nearest estimate and
    lost to it: a click's own slice was emptied when the second walk stopped short of it (s0028's T10: the click
    named the vertebral body, the walk re-seeded on the body above and stopped at the disc between; one click Dice
    0.0006)."""
    return merge_by_confidence(mask, iou, other_mask, other_iou, where=other_mask.any(axis=(1, 2)))


def reseed_slice(iou: dict[int, float], areas: dict[int, int], start_z: int) -> int | None:
    """The slice a walk from ``start_z`` should start again from: its most confident decoded slice, when that is
    ``RESEED_GAIN`` above the start's estimate and its mask ``RESEED_AREA`` of the widest; None otherwise."""
    widest = max(areas.values(), default=0)
    candidates = [(v, z) for z, v in iou.items()
                  if z != start_z and not np.isnan(v) and areas.get(z, 0) >= RESEED_AREA * widest]
    if not candidates or widest == 0:
        return None
    best, z = max(candidates, key=lambda item: (item[0], -abs(item[1] - start_z)))
    return z if best >= iou.get(start_z, 0.0) + RESEED_GAIN else None
