"""Geometry through the engine: RAS/LPS/oblique/permuted grids map to model space and back to the voxel."""
import numpy as np
import pytest
import torch
from engine_fixtures import ct_volume, oblique_affine, tiny_predictor

from RefSAM3DLib.engine.model_space import ModelSpace
from RefSAM3DLib.engine.resample import resample_block
from RefSAM3DLib.engine.sliding_window import gaussian_weight, grid_windows, window_slices
from RefSAM3DLib.io.geometry import VolumeGeometry

SPACING = (4.0, 4.0, 4.0)


def _affines():
    ras = np.diag([4.0, 4.0, 4.0, 1.0])
    lps = np.diag([-4.0, -4.0, 4.0, 1.0])
    permuted = np.array([[0, 0, 4.0, 0], [-4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 0, 1.0]])  # k->R, i->P, j->S
    return {"RAS": ras, "LPS": lps, "permuted": permuted, "oblique": oblique_affine(SPACING),
            "oblique-LPS": oblique_affine(SPACING, lps=True)}


@pytest.mark.parametrize("name", list(_affines()))
def test_mask_round_trips_to_the_voxel_at_model_spacing(name):
    geometry = VolumeGeometry(_affines()[name], (21, 17, 13))
    space = ModelSpace.build(geometry, SPACING)
    rng = np.random.default_rng(0)
    mask = rng.random(geometry.shape) > 0.7
    model = space.mask_to_model(mask)
    assert tuple(model.shape) == space.model_shape
    back = space.to_original(model) >= 0.5
    assert np.array_equal(back, mask)


@pytest.mark.parametrize("name", list(_affines()))
def test_a_ras_point_lands_on_its_voxel(name):
    geometry = VolumeGeometry(_affines()[name], (21, 17, 13))
    space = ModelSpace.build(geometry, SPACING)
    marker = np.zeros(geometry.shape, dtype=np.float32)
    voxel = (5, 11, 3)
    marker[voxel] = 1
    model = space.to_model(torch.from_numpy(marker))
    ras = geometry.ijk_to_ras(np.asarray([voxel]))
    coords = space.ras_to_model(ras)[0]
    assert np.allclose(coords, np.round(coords), atol=1e-6)
    assert tuple(np.round(coords).astype(int)) == tuple(np.unravel_index(int(model.argmax()), model.shape))


def test_coarser_model_grid_keeps_masks_and_points_consistent():
    geometry = VolumeGeometry.from_spacing((60, 50, 24), (0.8, 0.8, 2.5), origin=(10, -5, 3))
    space = ModelSpace.build(geometry, (1.5, 1.5, 1.5))
    i, j, k = np.meshgrid(*[np.arange(n) for n in geometry.shape], indexing="ij")
    sphere = ((i - 30) * 0.8) ** 2 + ((j - 25) * 0.8) ** 2 + ((k - 12) * 2.5) ** 2 < 12 ** 2
    back = space.to_original(space.mask_to_model(sphere)) >= 0.5
    dice = 2 * (back & sphere).sum() / (back.sum() + sphere.sum())
    assert dice > 0.95
    centre = space.ras_to_model(geometry.ijk_to_ras(np.asarray([[30, 25, 12]])))[0]
    model = space.mask_to_model(sphere)
    assert float(model[tuple(np.round(centre).astype(int))]) == pytest.approx(1.0, abs=1e-6)  # float32 sums


def test_block_resampling_equals_full_resampling():
    x = torch.randn(1, 1, 13, 17, 9)
    full = torch.nn.functional.interpolate(x, size=(26, 10, 20), mode="trilinear", align_corners=False)
    torch.testing.assert_close(resample_block(x, (26, 10, 20)), full, rtol=1e-5, atol=1e-5)
    block = (slice(3, 11), slice(2, 7), slice(5, 19))
    torch.testing.assert_close(resample_block(x, (26, 10, 20), block), full[..., 3:11, 2:7, 5:19], rtol=1e-5,
                               atol=1e-5)


def test_gaussian_blending_of_overlapping_windows_has_no_seams():
    shape, window = (40, 33, 29), (16, 16, 16)
    weight = gaussian_weight(window)
    total = torch.zeros(shape)
    blended = torch.zeros(shape)
    for start in grid_windows(shape, window, 0.5):
        total[window_slices(start, window)] += weight
        blended[window_slices(start, window)] += weight * 0.7
    assert (total > 0).all()
    torch.testing.assert_close(blended / total, torch.full(shape, 0.7))


@pytest.mark.parametrize("name", ["RAS", "oblique-LPS", "permuted"])
def test_session_image_puts_the_clicked_voxel_where_the_model_sees_it(name):
    geometry = VolumeGeometry(_affines()[name], (21, 17, 13))
    volume = ct_volume(geometry.shape, affine=geometry.affine)
    volume.array[:] = -1000
    volume.array[7, 4, 9] = 1000
    session = tiny_predictor().open(volume)
    peak = np.unravel_index(int(session.image.argmax()), session.image.shape)
    coords = session.space.ras_to_model(geometry.ijk_to_ras(np.asarray([[7, 4, 9]])))[0]
    assert tuple(np.round(coords).astype(int)) == tuple(int(p) for p in peak)
