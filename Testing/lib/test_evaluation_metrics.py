"""Metrics against cases whose answer is known on paper: spheres, shifts, empty masks."""
from __future__ import annotations

import math

import numpy as np
import pytest

from RefSAM3DLib.evaluation import (
    CaseMetrics,
    dice,
    evaluate_case,
    hd95,
    normalized_surface_dice,
    presence_accuracy,
    volume_ml,
)


def ball(shape, centre_vox, radius_mm, spacing_mm):
    """A physical (mm) sphere sampled on an anisotropic voxel grid."""
    grid = np.indices(shape, dtype=np.float64)
    squared = sum(((grid[a] - centre_vox[a]) * spacing_mm[a]) ** 2 for a in range(3))
    return squared <= radius_mm ** 2


def lens_dice(radius, distance):
    """Dice of two equal spheres: twice the lens (intersection) volume over twice a sphere volume."""
    lens = math.pi * (4 * radius + distance) * (2 * radius - distance) ** 2 / 12
    return lens / (4 / 3 * math.pi * radius ** 3)


@pytest.mark.parametrize("distance", [4, 10, 20])
def test_dice_of_offset_spheres_matches_lens_volume(distance):
    shape, radius = (64, 64, 64), 15
    a = ball(shape, (32, 32, 22), radius, (1, 1, 1))
    b = ball(shape, (32, 32, 22 + distance), radius, (1, 1, 1))
    assert dice(a, b) == pytest.approx(lens_dice(radius, distance), rel=0.03)


def test_identical_disjoint_and_empty_masks():
    a = ball((20, 20, 20), (6, 6, 6), 4, (1, 1, 1))
    far = ball((20, 20, 20), (14, 14, 14), 4, (1, 1, 1))
    empty = np.zeros_like(a)
    assert dice(a, a) == 1.0 and normalized_surface_dice(a, a, (1, 1, 1), 0) == 1.0 and hd95(a, a, (1, 1, 1)) == 0.0
    assert dice(a, far) == 0.0
    # empty prediction, empty reference, both empty: the documented conventions
    assert (dice(empty, a), normalized_surface_dice(empty, a, (1, 1, 1), 2)) == (0.0, 0.0)
    assert math.isnan(hd95(empty, a, (1, 1, 1)))
    assert (dice(a, empty), normalized_surface_dice(a, empty, (1, 1, 1), 2)) == (0.0, 0.0)
    assert math.isnan(hd95(a, empty, (1, 1, 1)))
    assert (dice(empty, empty), normalized_surface_dice(empty, empty, (1, 1, 1), 2), hd95(empty, empty, (1, 1, 1))) \
        == (1.0, 1.0, 0.0)


SPACING = (1.0, 1.0, 2.0)
SHAPE = (40, 40, 28)


@pytest.fixture(scope="module")
def shifted_pair():
    """A 10 mm sphere and the same sphere three voxels further along the 2 mm axis (6 mm)."""
    ref = ball(SHAPE, (20, 20, 12), 10, SPACING)
    pred = ball(SHAPE, (20, 20, 15), 10, SPACING)
    assert np.array_equal(np.roll(ref, 3, axis=2), pred)
    return pred, ref


def test_hd95_of_shift_along_coarse_axis_is_in_mm(shifted_pair):
    pred, ref = shifted_pair
    assert hd95(pred, ref, SPACING) == pytest.approx(6.0, abs=0.5)


def test_anisotropic_spacing_is_respected(shifted_pair):
    pred, ref = shifted_pair
    # The same voxel shift along a 1 mm axis is half the distance.
    along_fine_axis = np.roll(ref, 3, axis=0)
    assert hd95(along_fine_axis, ref, SPACING) == pytest.approx(3.0, abs=0.5)
    # Pretending the grid were isotropic 1 mm halves the coarse-axis distance too.
    assert hd95(pred, ref, (1, 1, 1)) == pytest.approx(3.0, abs=0.5)
    assert volume_ml(ref, SPACING) == pytest.approx(4 / 3 * math.pi * 10 ** 3 / 1000, rel=0.05)


def test_nsd_tolerance(shifted_pair):
    pred, ref = shifted_pair
    assert normalized_surface_dice(pred, ref, SPACING, tolerance_mm=6.0) == pytest.approx(1.0)
    assert normalized_surface_dice(pred, ref, SPACING, tolerance_mm=10.0) == pytest.approx(1.0)
    strict = normalized_surface_dice(pred, ref, SPACING, tolerance_mm=0.0)
    assert 0.0 <= strict < 1.0
    assert strict < normalized_surface_dice(pred, ref, SPACING, tolerance_mm=3.0) < 1.0


def test_presence_accuracy():
    assert presence_accuracy([True, False, True, False], [True, False, False, True]) == 0.5
    assert math.isnan(presence_accuracy([], []))
    with pytest.raises(ValueError):
        presence_accuracy([True], [True, False])


def test_evaluate_case_collects_everything(shifted_pair):
    pred, ref = shifted_pair
    row = evaluate_case(pred, ref, SPACING, case="c1", structure="liver", prompt="the liver", tolerance_mm=6.0)
    assert isinstance(row, CaseMetrics)
    assert row.nsd == pytest.approx(1.0) and 0 < row.dice < 1 and row.hd95 == pytest.approx(6.0, abs=0.5)
    assert row.presence_predicted and row.present_in_reference
    assert row.volume_pred_ml == pytest.approx(row.volume_ref_ml)
    missed = evaluate_case(np.zeros_like(ref), ref, SPACING, case="c1", structure="liver")
    assert not missed.presence_predicted and missed.dice == 0.0 and math.isnan(missed.hd95)


def test_bad_inputs_are_refused():
    a = np.zeros((4, 4, 4), bool)
    with pytest.raises(ValueError, match="shape"):
        dice(a, np.zeros((4, 4, 5), bool))
    with pytest.raises(ValueError, match="3D"):
        dice(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="spacing"):
        hd95(a, a, (1, 0, 1))
    with pytest.raises(ValueError, match="tolerance"):
        normalized_surface_dice(a, a, (1, 1, 1), -1)
