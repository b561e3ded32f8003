"""Into the model grid: the matrix resampler (one low-pass + interpolation matrix per axis, applied on the input's
own memory layout) computes the same map as the former separable path it replaced (contiguous reoriented copy,
Gaussian filter at full size, then interpolation), for every orientation, shrinking and growing axes, and the
Fortran-ordered arrays the readers hand over."""
import numpy as np
import pytest
import torch
from engine_fixtures import oblique_affine

from RefSAM3DLib.engine import model_space
from RefSAM3DLib.engine.model_image import prepare_model_image
from RefSAM3DLib.engine.model_space import ModelSpace
from RefSAM3DLib.engine.resample import antialias, axis_matrix, resample_block
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.modeling.config import get_config

TOLERANCE = 1e-5  # float32 on values of order 1: the two paths sum the same terms in a different order


def _affines(spacing):
    sx, sy, sz = spacing
    return {"RAS": np.diag([sx, sy, sz, 1.0]), "LPS": np.diag([-sx, -sy, sz, 1.0]),
            "permuted": np.array([[0, 0, sz, 0], [-sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, 0, 1.0]]),
            "oblique": oblique_affine(spacing), "oblique-LPS": oblique_affine(spacing, lps=True)}


def _reference(space: ModelSpace, volume: torch.Tensor) -> torch.Tensor:
    return space.to_model_separable(volume)


@pytest.mark.parametrize("name", ["RAS", "LPS", "permuted", "oblique", "oblique-LPS"])
@pytest.mark.parametrize("spacing, model_mm", [((0.7, 0.7, 1.5), (3.0, 3.0, 3.0)),  # clinical CT -> demo/lite grid
                                               ((0.8, 0.8, 5.0), (1.5, 1.5, 1.5)),  # thick slices: z grows
                                               ((3.0, 3.0, 3.0), (3.0, 3.0, 3.0))])  # same spacing: flips only
def test_matrix_resampling_equals_the_separable_reference(name, spacing, model_mm):
    geometry = VolumeGeometry(_affines(spacing)[name], (47, 39, 23))
    space = ModelSpace.build(geometry, model_mm)
    rng = np.random.default_rng(0)
    itk_order = rng.normal(size=geometry.shape[::-1]).astype(np.float32)  # readers: [k, j, i] memory, [i, j, k] view
    volume = torch.from_numpy(itk_order).permute(2, 1, 0)
    expected = _reference(space, volume.contiguous())
    for layout in (volume, volume.contiguous()):
        out = space.to_model(layout)
        assert tuple(out.shape) == space.model_shape and out.is_contiguous()
        torch.testing.assert_close(out, expected, rtol=0, atol=TOLERANCE)


def test_in_plane_fitting_and_leading_dims_match_the_reference():
    geometry = VolumeGeometry(_affines((0.7, 0.7, 2.5))["LPS"], (301, 257, 19))
    space = ModelSpace.build(geometry, (3.0, 3.0, 3.0), fit_in_plane=64)  # the lite model's in-plane fit
    x = torch.randn(2, *geometry.shape)
    torch.testing.assert_close(space.to_model(x), _reference(space, x), rtol=0, atol=TOLERANCE)


def test_axis_matrix_is_filter_then_interpolation():
    x = torch.randn(97)
    for n_out in (97, 96, 40, 13, 1, 150):
        volume = x.reshape(97, 1, 1)
        reference = resample_block(antialias(volume, (n_out, 1, 1)), (n_out, 1, 1))[:, 0, 0]
        matrix = axis_matrix(97, n_out)
        torch.testing.assert_close(matrix @ x, reference, rtol=0, atol=TOLERANCE)
        torch.testing.assert_close(matrix.sum(1), torch.ones(n_out), rtol=0, atol=1e-6)  # constants stay constant


def test_prepared_model_image_is_unchanged_for_a_reader_array(monkeypatch):
    config = get_config("demo")
    geometry = VolumeGeometry(_affines((0.7, 0.7, 1.5))["LPS"], (180, 150, 70))
    space = ModelSpace.build(geometry, config.spacing_mm)
    rng = np.random.default_rng(1)
    array = rng.integers(-1024, 1500, size=geometry.shape[::-1]).astype(np.int16).transpose(2, 1, 0)
    new = prepare_model_image(array, space, config, "CT", torch.device("cpu"))
    monkeypatch.setattr(model_space, "RESAMPLER", "separable")
    old = prepare_model_image(array, space, config, "CT", torch.device("cpu"))
    torch.testing.assert_close(new, old, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", ["RAS", "LPS", "permuted", "oblique", "oblique-LPS"])
@pytest.mark.parametrize("spacing, model_mm", [((0.7, 0.7, 1.5), (3.0, 3.0, 3.0)), ((0.8, 0.8, 5.0), (1.5, 1.5, 1.5)),
                                               ((3.0, 3.0, 3.0), (3.0, 3.0, 3.0))])
def test_results_come_back_to_the_original_grid_as_before(name, spacing, model_mm, monkeypatch):
    geometry = VolumeGeometry(_affines(spacing)[name], (61, 53, 29))
    space = ModelSpace.build(geometry, model_mm)
    model_map = torch.rand(space.model_shape)
    box = tuple(slice(1, max(2, n - 2)) for n in space.model_shape)
    new = [space.to_original(model_map), space.to_original(model_map, box)]
    monkeypatch.setattr(model_space, "RESAMPLER", "separable")
    old = [space.to_original(model_map), space.to_original(model_map, box)]
    for a, b in zip(new, old):
        assert a.shape == geometry.shape and a.flags.c_contiguous and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # the same two-tap interpolation, summed by a GEMM
        assert np.array_equal(a == 0, b == 0)  # nothing outside the block
