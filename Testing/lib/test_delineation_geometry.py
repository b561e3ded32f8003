"""Geometry of the delineation stage, to the voxel: every file orientation is shown to the decoder as DICOM shows
an axial slice (anterior up, the patient's left on the right, seen from the feet); coordinates and masks go
back to the user's grid exactly; a view maps slice pixels to the decoder's 256 px input and back, and the
whole-slice view is LiteMedSAM's own preprocessing (longer side to 256, padded bottom/right)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from RefSAM3DLib.engine.delineate.axial_slices import AxialSlices
from RefSAM3DLib.engine.delineate.slice_view import View
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume

ORIENTATIONS = {
    "RAS": np.diag([1.0, 1.0, 1.0]),
    "LPS": np.diag([-1.0, -1.0, 1.0]),
    "permuted SLP": np.array([[0, -1.0, 0], [0, 0, -1.0], [1.0, 0, 0]]),  # i -> S, j -> L, k -> P
}


def _volume(direction: np.ndarray, shape=(20, 24, 16), spacing=(1.0, 2.0, 3.0)) -> Volume:
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(spacing)
    affine[:3, 3] = (10.0, -20.0, 30.0)
    rng = np.random.default_rng(0)
    return Volume(rng.normal(size=shape).astype(np.float32), VolumeGeometry(affine, shape), modality="CT")


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_slices_are_shown_anterior_up_and_patient_left_on_the_right(name):
    volume = _volume(ORIENTATIONS[name])
    slices = AxialSlices(volume)
    centre = volume.geometry.ijk_to_ras(np.asarray(volume.geometry.shape, float)[None] / 2 - 0.5)[0]
    moved = {"anterior": (0, 8, 0), "left": (-8, 0, 0), "superior": (0, 0, 8)}
    zrc = {k: slices.from_ras((centre + np.asarray(v))[None])[0] for k, v in moved.items()}
    base = slices.from_ras(centre[None])[0]
    assert zrc["anterior"][1] < base[1]  # anterior = a smaller row (up)
    assert zrc["left"][2] > base[2]  # patient left = a larger column (right of the image)
    assert zrc["superior"][0] > base[0]  # superior = a higher slice


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_coordinates_and_masks_go_back_exactly(name):
    volume = _volume(ORIENTATIONS[name])
    slices = AxialSlices(volume)
    ijk = np.random.default_rng(1).uniform(0, np.asarray(volume.geometry.shape) - 1, size=(50, 3))
    assert np.allclose(slices.to_ijk(slices.from_ijk(ijk)), ijk)
    mask = np.random.default_rng(2).random(volume.geometry.shape) > 0.7
    stack = slices.mask_from_volume(mask)
    assert stack.shape == slices.shape
    assert np.array_equal(slices.mask_to_volume(stack), mask)
    voxel = (3, 5, 7)
    z, r, c = np.round(slices.from_ijk(np.asarray([voxel], float))[0]).astype(int)
    assert slices.slice(z)[r, c] == volume.array[voxel]  # a slice pixel is the voxel it claims to be
    assert stack[z, r, c] == mask[voxel]


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_a_small_structure_is_moved_as_its_box_and_lands_voxel_for_voxel(name):
    """Only the mask's bounding box is moved between grids (a clinical CT is 78 M voxels): the result must be
    the whole-array transform exactly, and an empty mask stays empty."""
    volume = _volume(ORIENTATIONS[name])
    slices = AxialSlices(volume)
    mask = np.zeros(volume.geometry.shape, dtype=bool)
    mask[2:9, 17:23, 1:6] = np.random.default_rng(3).random((7, 6, 5)) > 0.4
    stack = slices.mask_from_volume(mask)
    whole = np.transpose(slices.reorientation.forward(mask)[::-1, ::-1, :], (2, 1, 0))
    assert np.array_equal(stack, whole)
    assert np.array_equal(slices.mask_to_volume(stack), mask)
    assert not slices.mask_to_volume(np.zeros(slices.shape, dtype=bool)).any()


def test_pixel_sizes_follow_the_slice_axes():
    slices = AxialSlices(_volume(ORIENTATIONS["permuted SLP"], spacing=(1.0, 2.0, 3.0)))
    assert slices.slice_mm == 1.0  # i is superior
    assert slices.pixel_mm == (3.0, 2.0)  # rows run along k (posterior), columns along j (left)


def test_the_whole_slice_view_is_litemedsams_preprocessing():
    shape, pixel = (300, 400), (0.8, 0.8)
    view = View.whole(shape, pixel)
    assert view.resized == (192, 256) and (view.y0, view.x0) == (0, 0)
    unit = np.random.default_rng(3).random(shape).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(unit)[None, None], size=(192, 256), mode="bilinear",
                             align_corners=False, antialias=True)[0, 0]
    rendered = view.render(unit)[0]
    assert torch.allclose(rendered[:192], expected, atol=1e-6) and not rendered[192:].any()
    box = view.box_to_input(np.asarray([30.0, 40.0, 150.0, 260.0]))  # (r0, c0, r1, c1) -> (x0, y0, x1, y1)
    assert np.allclose(box, np.asarray([40.0, 30.0, 260.0, 150.0]) * 256 / 400, atol=0.5)  # LiteMedSAM: box * 256/W


def test_slice_and_input_coordinates_invert_and_masks_return_to_their_pixels():
    shape, pixel = (120, 90), (1.5, 1.5)
    for view in (View.whole(shape, pixel), View.centred(shape, pixel, 400.0)):
        rc = np.random.default_rng(4).uniform(0, 80, size=(20, 2))
        assert np.allclose(view.to_slice(view.to_input(rc)), rc)
        square = np.zeros(shape, np.float32)
        square[40:70, 30:60] = 1.0
        logits = view.render(square)[0] * 20 - 10  # the rendered square as logits
        region, back = view.logits_to_slice(logits, shape)
        full = np.zeros(shape, bool)
        full[region] = back > 0
        inside = full[40:70, 30:60].mean()
        outside = full.sum() - full[40:70, 30:60].sum()
        assert inside > 0.95 and outside <= 0.05 * 900


def test_a_tight_crop_of_a_body_is_also_offered_padded_into_a_whole_slice_field():
    from RefSAM3DLib.engine.delineate.field_of_view import PADDED_FIELD_MM, candidate_views, is_crop, more_trusted

    def slices(shape, spacing, body_semi_axes_mm):
        i, j, _ = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
        x, y = (i - shape[0] / 2) * spacing[0], (j - shape[1] / 2) * spacing[1]
        body = (x / body_semi_axes_mm[0]) ** 2 + (y / body_semi_axes_mm[1]) ** 2 < 1
        array = np.where(body, 40.0, -1000.0).astype(np.float32)
        return AxialSlices(Volume(array, VolumeGeometry.from_spacing(shape, spacing), modality="CT"))

    assert is_crop(slices((128, 100, 8), (1.5, 1.5, 2.0), (170.0, 120.0)), -400.0)  # 192 mm through the body
    assert not is_crop(slices((128, 100, 8), (1.5, 1.5, 2.0), (80.0, 60.0)), -400.0)  # a small body seen whole
    assert not is_crop(slices((256, 256, 8), (1.5, 1.5, 2.0), (300.0, 300.0)), -400.0)  # a whole CT field
    assert candidate_views((128, 100), (1.5, 1.5), crop=False) == [View.whole((128, 100), (1.5, 1.5))]
    whole, padded = candidate_views((128, 100), (1.5, 1.5), crop=True)  # a 192 x 150 mm crop
    assert whole == View.whole((128, 100), (1.5, 1.5))
    assert np.isclose(padded.scale_row, 256 / PADDED_FIELD_MM * 1.5, rtol=0.01)
    centre = padded.to_input(np.asarray([[63.5, 49.5]]))[0]  # the crop's centre at the input's centre
    assert np.allclose(centre, 127.5, atol=1.0)
    assert more_trusted([[0.8, 0.9], [0.9, 0.95]]) == 1 and more_trusted([[0.9], [0.9]]) == 0
    assert more_trusted([[0.7], []]) == 0  # a view that drew nothing is never preferred


def test_a_box_keeps_the_view_trusted_on_its_start_slices_and_along_its_walk_together():
    """The 128-cubed sample CT liver crop's readings (start candidates, walk): the starts alone prefer the whole
    slice, the walk the padded view by more; the CTA aorta's walk cannot tell the views apart, its starts can."""
    from RefSAM3DLib.engine.delineate.field_of_view import walked_view

    assert walked_view([[0.877], [0.862]], [[0.818], [0.898]]) == 1  # liver crop: padded (0.83 vs 0.41)
    assert walked_view([[0.791], [0.780]], [[0.785], [0.789]]) == 0  # CTA aorta: whole slice (0.63 vs 0.39)
    assert walked_view([[0.9, 0.8], [0.9]], [[0.8], []]) == 0  # a view whose walk decoded nothing is not kept
