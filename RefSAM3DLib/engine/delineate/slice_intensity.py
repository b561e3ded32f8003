"""Grey values as LiteMedSAM saw them in training: CT through a fixed window, MR by the volume's percentiles.

LiteMedSAM's data were clipped to a window (CT) or to the 0.5-99.5th percentiles of the non-zero voxels (MR)
and scaled to [0, 1]; every slice was then min-max scaled again. A fixed mapping per volume is used here
instead of the per-slice min-max: on a whole CT slice the two agree (air and dense bone reach both ends of the
window), while on a zoomed view a per-view min-max would stretch whatever the view holds and show the same
tissue differently in neighbouring views.

CT windows (width, level): soft tissue (400, 40) is LiteMedSAM's default; the lung window (1500, -600) shows
aerated structures (lungs, airways) and tissue darker than the soft-tissue window shows. The lesion window
(840, -180) is the soft-tissue window extended down to -600 HU, for solid tissue ringed by aerated lung: a
nodule's rim of partial volume (between about -600 and -160 HU), black in the soft-tissue window, is grey in it,
while the lung around it stays black; its contour is drawn on that rim. The lung window puts the rim and the
lung's vessels mid-grey and the decoder takes them in (lung1's nodule, box: soft 0.79, lung 0.73, lesion 0.91;
-800..200 gave 0.89, -850..50 0.86). The contrast window (600, 250) shows a contrast-filled lumen (an arterial
aorta, ~400 HU) apart from the vessels against it (the pulmonary trunk, ~320 HU), which the soft-tissue window
makes one white object (``contrast_lumen``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SOFT_TISSUE_HU = (-160.0, 240.0)
LUNG_HU = (-1350.0, 150.0)
LESION_HU = (-600.0, 240.0)
CONTRAST_HU = (-50.0, 550.0)
MR_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class IntensityWindow:
    name: str
    lo: float
    hi: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (np.clip(values, self.lo, self.hi) - self.lo) / max(self.hi - self.lo, 1e-6)


def ct_window(name: str = "soft") -> IntensityWindow:
    lo, hi = {"soft": SOFT_TISSUE_HU, "lung": LUNG_HU, "lesion": LESION_HU, "contrast": CONTRAST_HU}[name]
    return IntensityWindow(name, lo, hi)


def mr_window(array: np.ndarray) -> IntensityWindow:
    """The 0.5-99.5th percentiles of the non-zero voxels (a sample of ~2 M of them: exact enough, fast)."""
    array = np.asarray(array)
    every = np.arange(0, array.size, max(1, array.size // 2_000_000))  # gathered in place: no copy of a view
    sample = array[np.unravel_index(every, array.shape)].astype(np.float32)
    nonzero = sample[sample != 0]
    if nonzero.size < 16:
        nonzero = sample
    lo, hi = np.percentile(nonzero, MR_PERCENTILES)
    return IntensityWindow("mr", float(lo), float(max(hi, lo + 1e-3)))
