"""Interactive evaluation: Dice after 1, 3, 5, ... simulated clicks, and with a box only.

The usual number-of-clicks protocol of interactive 3D segmentation (as in SAM-Med3D and nnInteractive's
benchmarks): the first click goes to the interior point farthest from the structure's boundary; every
next click goes to the centre (the point farthest from its border) of the largest error region of the
current result -- positive inside a miss, negative inside a false positive -- and the previous result
is fed back, so the model refines instead of starting over. Clicks are text-free: this measures what
clicks alone achieve. A box is the reference's bounding box, given alone.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..engine.prompts import Prompt


def deepest_point(region: np.ndarray, spacing: np.ndarray) -> tuple[int, int, int]:
    """The voxel of ``region`` farthest (in mm) from its border; ties go to the first in index order."""
    distance = ndimage.distance_transform_edt(np.pad(region, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(distance)), region.shape))


def next_click(prediction: np.ndarray, reference: np.ndarray, spacing: np.ndarray) -> tuple[tuple[int, int, int],
                                                                                           bool] | None:
    """The correction a person would make: the centre of the largest error component, and its sign."""
    best = None
    for region, positive in ((reference & ~prediction, True), (prediction & ~reference, False)):
        if not region.any():
            continue
        labels, n = ndimage.label(region)
        sizes = np.bincount(labels.ravel())[1:]
        largest = int(np.argmax(sizes)) + 1
        if best is None or sizes[largest - 1] > best[0]:
            best = (int(sizes[largest - 1]), labels == largest, positive)
    if best is None:
        return None
    return deepest_point(best[1], spacing), best[2]


def bounding_box_ras(reference: np.ndarray, geometry) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Two RAS corners of the reference's voxel bounding box (voxel centres)."""
    voxels = np.argwhere(reference)
    corners = np.stack([voxels.min(0), voxels.max(0)]).astype(float)
    ras = geometry.ijk_to_ras(corners)
    return tuple(float(v) for v in ras[0]), tuple(float(v) for v in ras[1])


def click_series(session, reference: np.ndarray, geometry, counts: list[int]) -> dict[int, np.ndarray]:
    """Masks after each click count in ``counts`` (ascending), clicking by the protocol above."""
    spacing = np.asarray(geometry.spacing, dtype=float)
    wanted = sorted(set(int(c) for c in counts if c > 0))
    points: list[tuple[float, float, float]] = []
    signs: list[bool] = []
    out: dict[int, np.ndarray] = {}
    previous = None
    prediction = np.zeros(reference.shape, dtype=bool)
    for k in range(1, (wanted[-1] if wanted else 0) + 1):
        if k == 1:
            voxel, positive = deepest_point(reference, spacing), True
        else:
            step = next_click(prediction, reference, spacing)
            if step is None:  # already perfect: later counts keep this mask
                for c in wanted:
                    if c >= k:
                        out[c] = prediction
                break
            voxel, positive = step
        points.append(tuple(float(v) for v in geometry.ijk_to_ras(np.asarray([voxel], dtype=float))[0]))
        signs.append(positive)
        previous, = session.segment(Prompt(points=list(points), point_labels=list(signs), previous=previous))
        prediction = previous.mask
        if k in wanted:
            out[k] = prediction
    return out
