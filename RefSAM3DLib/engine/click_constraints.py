"""What a click means, enforced on the model's probability map so that it holds for any model.

A person who clicks "include here" expects the result to contain that voxel; one who clicks
"exclude here" expects the region under the click to go. The network is trained for this, but a
model can still miss (a click on a structure it has never seen, a faint lesion), and an interactive
tool that ignores a click is unusable. So after decoding:

* positive click: a small ball around the clicked voxel is set to certainty;
* negative click: a ball around it is cleared; when the prompt also has positive clicks, the connected
  region the exclude click touches is removed unless a positive click holds on to it;
* a prompt made of clicks only (no text) keeps just the connected regions that contain a positive
  click: clicks select an object, they do not ask for every similar-looking structure in the scan.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage


def _ball(shape: tuple[int, int, int], centre: np.ndarray, radius: float) -> tuple[slice, slice, slice, np.ndarray]:
    lo = np.maximum(np.floor(centre - radius).astype(int), 0)
    hi = np.minimum(np.ceil(centre + radius).astype(int) + 1, np.asarray(shape))
    grids = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij")
    inside = sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius ** 2
    return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2])), inside


def apply_click_constraints(probability: torch.Tensor, coords: np.ndarray, labels: np.ndarray, has_text: bool,
                            threshold: float = 0.5, radius: float = 1.5) -> torch.Tensor:
    """probability (D, H, W) on the model grid; coords (N, 3) continuous model voxels; labels 1 = include,
    0 = exclude (box corners, labels 2/3, are ignored). Returns the constrained map (a new tensor)."""
    clicks = [(np.asarray(c, dtype=np.float64), int(lab)) for c, lab in zip(coords, labels) if lab in (0, 1)]
    if not clicks:
        return probability
    shape = tuple(probability.shape)
    prob = probability.detach().float().cpu().numpy().copy()
    positives = [np.clip(np.round(c), 0, np.asarray(shape) - 1).astype(int) for c, lab in clicks if lab == 1]
    negatives = [np.clip(np.round(c), 0, np.asarray(shape) - 1).astype(int) for c, lab in clicks if lab == 0]
    for c in positives:
        region, inside = _ball(shape, c, radius)
        prob[region][inside] = np.maximum(prob[region][inside], 1.0)
    for c in negatives:
        region, inside = _ball(shape, c, radius)
        block = prob[region]
        block[inside] = 0.0
        prob[region] = block
    components, _ = ndimage.label(prob >= threshold)
    held = {int(components[tuple(c)]) for c in positives} - {0}
    if negatives and positives:
        for c in negatives:  # the region right next to the exclude click (the ball itself is now empty)
            region, inside = _ball(shape, c, radius + 1.0)
            touched = set(np.unique(components[region][inside]).tolist()) - {0} - held
            for label in touched:
                prob[components == label] = 0.0
    if positives and not has_text:
        keep = np.isin(components, list(held))
        prob[~keep] = np.minimum(prob[~keep], threshold * 0.5)
    return torch.from_numpy(prob).to(probability.device, probability.dtype)
