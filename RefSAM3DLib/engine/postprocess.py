"""Clean-up of a thresholded mask on the model grid: largest component, hole filling, minimum size.

Runs on the model grid (small) before the result is mapped to the user's grid (possibly huge), and
reshapes the probability map rather than the final mask, so the mapping back stays smooth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class PostProcessing:
    threshold: float = 0.5
    largest_component: bool = False
    fill_holes: bool = False
    # components smaller than this are removed: a speck of a few voxels is noise, and must not turn a
    # structure that is absent into "found" (0.05 mL is about two 3 mm voxels; the smallest lesions we
    # segment are 0.1 mL)
    min_size_ml: float = 0.05

    def apply(self, probability: np.ndarray, voxel_ml: float) -> np.ndarray:
        """Probability (D, H, W) on the model grid -> adjusted probability (same grid)."""
        mask = probability >= self.threshold
        if not mask.any() or not (self.largest_component or self.fill_holes or self.min_size_ml > 0):
            return probability
        keep = mask
        if self.largest_component or self.min_size_ml > 0:
            labels, count = ndimage.label(mask)
            if count:
                sizes = np.bincount(labels.ravel())[1:]
                wanted = np.zeros(count + 1, dtype=bool)
                if self.largest_component:
                    wanted[1 + int(np.argmax(sizes))] = True
                else:
                    wanted[1:] = True
                if self.min_size_ml > 0:
                    wanted[1:] &= sizes * voxel_ml >= self.min_size_ml
                keep = wanted[labels]
        # dropped components fall below threshold; everything else keeps its probability
        out = np.where(mask & ~keep, np.minimum(probability, self.threshold * 0.5), probability).astype(np.float32)
        if self.fill_holes:
            filled = ndimage.binary_fill_holes(keep)
            out[filled & ~keep] = 1.0
        return out
