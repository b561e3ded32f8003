"""Per-case segmentation metrics on boolean (I, J, K) masks, with distances in millimetres.

All distances use the voxel spacing, so a one-voxel error along a 5 mm slice axis counts five
times as much as along a 1 mm in-plane axis, which is what a reader of the report cares about.

Empty-mask conventions (an absent structure is a legitimate answer for a text prompt):

==========================  =====  =====  =====
case                        Dice   NSD    HD95
==========================  =====  =====  =====
both masks empty            1      1      0
exactly one mask empty      0      0      nan (shown as "n/a")
==========================  =====  =====  =====

HD95 stays undefined (nan) when only one mask is empty because there is no surface to measure a
distance to, and any finite stand-in (image diagonal, a fixed penalty) would silently move means.
Surface distances come from MONAI (``compute_surface_dice`` / ``compute_hausdorff_distance``);
MONAI and torch are imported only when a distance metric is needed.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CaseMetrics:
    """One row of an evaluation: one structure, in one case, for one prompt."""

    case: str
    structure: str
    prompt: str
    dice: float
    nsd: float
    hd95: float  # nan when exactly one of prediction / reference is empty
    presence_predicted: bool
    present_in_reference: bool
    volume_pred_ml: float
    volume_ref_ml: float


def _as_mask(array: np.ndarray, what: str) -> np.ndarray:
    mask = np.asarray(array)
    if mask.ndim != 3:
        raise ValueError(f"{what} must be a 3D (I, J, K) mask, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def _as_pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred_mask, ref_mask = _as_mask(pred, "prediction"), _as_mask(ref, "reference")
    if pred_mask.shape != ref_mask.shape:
        raise ValueError(f"prediction shape {pred_mask.shape} differs from reference shape {ref_mask.shape}")
    return pred_mask, ref_mask


def _as_spacing(spacing_mm: Sequence[float]) -> tuple[float, float, float]:
    spacing = tuple(float(s) for s in np.asarray(spacing_mm, dtype=np.float64).reshape(-1))
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing_mm must be three positive finite numbers, got {spacing_mm!r}")
    return spacing  # type: ignore[return-value]


def _one_hot_batch(mask: np.ndarray):
    """(I, J, K) bool -> float tensor (1, 2, I, J, K): background and foreground channels, as MONAI wants."""
    import torch

    foreground = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
    return torch.stack([1.0 - foreground, foreground])[None]


@contextmanager
def _quiet_monai_deprecations():
    """MONAI 1.5+ warns about an argument it passes to itself; that is noise to our users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
        yield


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice overlap 2|P∩R| / (|P| + |R|); 1.0 when both masks are empty."""
    pred_mask, ref_mask = _as_pair(pred, ref)
    total = int(pred_mask.sum()) + int(ref_mask.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred_mask, ref_mask).sum()) / total


def normalized_surface_dice(pred: np.ndarray, ref: np.ndarray, spacing_mm: Sequence[float],
                            tolerance_mm: float) -> float:
    """Fraction of both boundaries lying within ``tolerance_mm`` of the other boundary (Nikolov et al. 2021)."""
    pred_mask, ref_mask = _as_pair(pred, ref)
    spacing = _as_spacing(spacing_mm)
    tolerance = float(tolerance_mm)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance_mm must be a finite number >= 0, got {tolerance_mm!r}")
    pred_any, ref_any = bool(pred_mask.any()), bool(ref_mask.any())
    if not pred_any and not ref_any:
        return 1.0
    if pred_any != ref_any:
        return 0.0
    from monai.metrics import compute_surface_dice

    with _quiet_monai_deprecations():
        value = compute_surface_dice(_one_hot_batch(pred_mask), _one_hot_batch(ref_mask), class_thresholds=[tolerance],
                                     include_background=False, spacing=spacing)
    return float(value[0, 0])


def hd95(pred: np.ndarray, ref: np.ndarray, spacing_mm: Sequence[float]) -> float:
    """Symmetric 95th-percentile Hausdorff distance in mm; 0 if both empty, nan if exactly one is empty."""
    pred_mask, ref_mask = _as_pair(pred, ref)
    spacing = _as_spacing(spacing_mm)
    pred_any, ref_any = bool(pred_mask.any()), bool(ref_mask.any())
    if not pred_any and not ref_any:
        return 0.0
    if pred_any != ref_any:
        return math.nan
    from monai.metrics import compute_hausdorff_distance

    with _quiet_monai_deprecations():
        value = compute_hausdorff_distance(_one_hot_batch(pred_mask), _one_hot_batch(ref_mask),
                                           include_background=False, percentile=95, spacing=spacing)
    return float(value[0, 0])


def volume_ml(mask: np.ndarray, spacing_mm: Sequence[float]) -> float:
    """Mask volume in millilitres (1 ml = 1000 mm^3)."""
    return float(_as_mask(mask, "mask").sum()) * float(np.prod(_as_spacing(spacing_mm))) / 1000.0


def presence_accuracy(found_flags: Iterable[bool], truly_present_flags: Iterable[bool]) -> float:
    """Share of cases where "is the structure there?" was answered correctly; nan for no cases."""
    found, present = [bool(f) for f in found_flags], [bool(p) for p in truly_present_flags]
    if len(found) != len(present):
        raise ValueError(f"presence_accuracy needs as many predictions ({len(found)}) as truths ({len(present)})")
    if not found:
        return math.nan
    return sum(f == p for f, p in zip(found, present)) / len(found)


def evaluate_case(pred: np.ndarray, ref: np.ndarray, spacing_mm: Sequence[float], *, case: str, structure: str,
                  prompt: str = "", tolerance_mm: float = 2.0, presence_predicted: bool | None = None) -> CaseMetrics:
    """All metrics for one structure in one case. ``presence_predicted`` defaults to "the prediction is non-empty"."""
    pred_mask, ref_mask = _as_pair(pred, ref)
    found = bool(pred_mask.any()) if presence_predicted is None else bool(presence_predicted)
    return CaseMetrics(
        case=str(case), structure=str(structure), prompt=str(prompt),
        dice=dice(pred_mask, ref_mask),
        nsd=normalized_surface_dice(pred_mask, ref_mask, spacing_mm, tolerance_mm),
        hd95=hd95(pred_mask, ref_mask, spacing_mm),
        presence_predicted=found, present_in_reference=bool(ref_mask.any()),
        volume_pred_ml=volume_ml(pred_mask, spacing_mm), volume_ref_ml=volume_ml(ref_mask, spacing_mm))
