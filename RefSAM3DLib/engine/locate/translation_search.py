"""Starting translations between two CTs by normalised cross-correlation over every shift (FFT).

The body-profile start (``body_profile``) assumes each axial slice shows the whole body: it matches how much
of the body is lung and bone and puts the two bodies' centres on each other. A scan reconstructed on a small
field of view (a 128-cubed liver crop, a cardiac field) cuts the body in-plane, so both assumptions fail: on
our liver crops no profile start fitted (correlation 0.27-0.31, below the fit threshold). This search assumes
nothing about the body: it correlates the two windowed images at every 3D shift on a coarse grid, counting
only shifts where most of the smaller scan lies inside the larger -- a crop of the patient inside a whole
reference, or a reference that is itself a crop (the CTA reference: a 180 mm field around the aorta) inside a
whole patient -- and returns the best few, well apart.
Translation only -- patients differ in size -- the affine fit that follows refines each.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy.signal import fftconvolve

SHRINK = 2  # of the registration grid: 4 mm -> 8 mm; 4 mm found the same starts, 10x slower
MIN_INSIDE = 0.6  # of the smaller of the two grids, inside the other at an accepted shift
SEPARATION_MM = 30.0


def _correlate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """c[t] = sum_p a[p + t] * b[p] for every shift t of b over a (index t + b.shape - 1)."""
    return fftconvolve(a, b[::-1, ::-1, ::-1], mode="full")


def correlation_map(fixed: np.ndarray, moving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of ``fixed`` with ``moving`` at every integer shift, over their overlap, and the
    overlap's size in voxels. Index t + fixed.shape - 1 holds the shift under which fixed voxel p meets
    moving voxel p + t."""
    fixed = fixed.astype(np.float64)
    moving = moving.astype(np.float64)
    ones_f, ones_m = np.ones_like(fixed), np.ones_like(moving)
    count = np.rint(_correlate(ones_m, ones_f))
    sum_f, sum_ff = _correlate(ones_m, fixed), _correlate(ones_m, fixed * fixed)
    sum_m, sum_mm = _correlate(moving, ones_f), _correlate(moving * moving, ones_f)
    sum_fm = _correlate(moving, fixed)
    with np.errstate(divide="ignore", invalid="ignore"):
        covariance = sum_fm - sum_f * sum_m / count
        spread = np.maximum(sum_ff - sum_f ** 2 / count, 0) * np.maximum(sum_mm - sum_m ** 2 / count, 0)
        correlation = covariance / np.sqrt(spread)
    correlation[~np.isfinite(correlation)] = -np.inf
    return correlation, count


def translation_starts(fixed_w: sitk.Image, moving_w: sitk.Image, count: int = 3) -> list[tuple[np.ndarray, float]]:
    """The ``count`` best LPS translations t (moving point = fixed point + t), at least ``SEPARATION_MM`` apart,
    with their correlation. Both images: windowed, identity direction, the same isotropic spacing."""
    shrink = [SHRINK] * 3
    fixed = sitk.GetArrayFromImage(sitk.BinShrink(fixed_w, shrink))
    moving = sitk.GetArrayFromImage(sitk.BinShrink(moving_w, shrink))
    spacing_zyx = np.asarray(fixed_w.GetSpacing())[::-1] * SHRINK
    correlation, overlap = correlation_map(fixed, moving)
    correlation[overlap < MIN_INSIDE * min(fixed.size, moving.size)] = -np.inf
    offset = np.asarray(fixed.shape) - 1
    # both grids were shrunk alike, so their origins moved alike: the difference of the originals holds
    origin_shift = np.asarray(moving_w.GetOrigin()) - np.asarray(fixed_w.GetOrigin())
    chosen: list[tuple[np.ndarray, float]] = []
    flat = correlation.ravel()
    for index in np.argsort(flat)[::-1]:
        if not np.isfinite(flat[index]) or len(chosen) == count:
            break
        shift_zyx = (np.asarray(np.unravel_index(index, correlation.shape)) - offset) * spacing_zyx
        if all(np.linalg.norm(shift_zyx - other) >= SEPARATION_MM for other, _ in chosen):
            chosen.append((shift_zyx, float(flat[index])))
    return [(origin_shift + shift[::-1], score) for shift, score in chosen]
