"""The engine with the lite (per-slice TinyViT) layout: slices encoded once per session, whole slices in
one window, and the click invariants that hold for any model (here a random tiny one)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_fixtures import ct_volume

from RefSAM3DLib.engine.errors import PromptError
from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.modeling.config import get_config
from RefSAM3DLib.modeling.lite_refsam3d import LiteRefSAM3D


def lite_tiny_predictor() -> RefSAM3DPredictor:
    torch.manual_seed(0)
    model = LiteRefSAM3D(get_config("lite_tiny"))
    with torch.no_grad():  # zero-initialised parts get small values so outputs depend on the prompt
        for name, p in model.named_parameters():
            if p.requires_grad and p.abs().sum() == 0 and "bias" not in name:
                p.normal_(0, 0.05)
    return RefSAM3DPredictor(model.eval(), device="cpu", presence_threshold=0.0, anatomy_prior=False)


@pytest.fixture(scope="module")
def session():
    return lite_tiny_predictor().open(ct_volume(shape=(40, 36, 30)))


def _ras_of_voxel(volume, ijk) -> tuple[float, float, float]:
    return tuple(float(v) for v in volume.geometry.ijk_to_ras(np.asarray([ijk], dtype=float))[0])


def test_whole_slice_in_one_window_and_every_other_slice_encoded_once(session):
    assert session.grid_shape[1:] == tuple(session.config.window_size[1:])  # the in-plane window is the slice
    assert session.predictor.slice_stride == 2  # the lite default
    session.segment(Prompt(text="liver"))
    grid_depth = session.grid_shape[0]
    anchors = set(range(0, grid_depth, 2)) | {grid_depth - 1}  # even slices, and the last one (no neighbour above)
    assert session.slices.encoded_slices == len(anchors)
    assert bool(session.slices.done.all())
    windows = session.encoded_windows
    session.segment(Prompt(text="spleen"))
    assert session.slices.encoded_slices == len(anchors)  # nothing re-encoded
    assert session.encoded_windows == windows


def test_slices_between_encoded_ones_get_the_mean_of_their_neighbours(session):
    session.segment(Prompt(text="liver"))
    maps = session.slices.maps
    for store in maps:
        z = 3
        expected = ((store[z - 1].float() + store[z + 1].float()) * 0.5).to(store.dtype)
        assert torch.equal(store[z], expected)


def test_slice_encoding_progress_reaches_the_end_with_every_other_slice():
    session = lite_tiny_predictor().open(ct_volume(shape=(40, 36, 30)))
    seen = []
    session.segment(Prompt(text="liver"), progress=lambda fraction, message: seen.append((fraction, message)))
    encoding = [fraction for fraction, message in seen if message == "encoding slices"]
    assert encoding and encoding[-1] == 1.0 and encoding == sorted(encoding)


def test_stride_one_encodes_every_slice():
    predictor = lite_tiny_predictor()
    predictor.slice_stride = 1
    one = predictor.open(ct_volume(shape=(40, 36, 30)))
    one.segment(Prompt(text="liver"))
    assert one.slices.encoded_slices == one.grid_shape[0]
    with pytest.raises(ValueError, match="slice_stride"):
        RefSAM3DPredictor(predictor.model, device="cpu", slice_stride=3)


def test_in_plane_spacing_grows_to_fit_the_field_of_view(session):
    spacing = session.space.spacing_mm
    extent = np.asarray(session.volume.geometry.shape) * 4.0
    assert spacing[1] == pytest.approx(spacing[2], rel=0.05)  # each axis rounds to whole voxels
    assert spacing[1] >= 0.95 * max(extent) / session.config.window_size[1]


def test_a_positive_click_is_always_in_the_mask(session):
    volume = session.volume
    for ijk in [(20, 18, 15), (12, 20, 15), (26, 14, 10)]:
        result, = session.segment(Prompt(points=[_ras_of_voxel(volume, ijk)], point_labels=[True]))
        assert result.mask[ijk], ijk
        assert result.found


def test_a_negative_click_is_never_in_the_mask(session):
    volume = session.volume
    first, = session.segment(Prompt(text="liver", points=[_ras_of_voxel(volume, (20, 18, 15))], point_labels=[True]))
    second, = session.segment(Prompt(text="liver", points=[_ras_of_voxel(volume, (20, 18, 15)),
                                                          _ras_of_voxel(volume, (22, 18, 15))],
                                     point_labels=[True, False], previous=first))
    assert second.mask[20, 18, 15] and not second.mask[22, 18, 15]


def test_click_only_prompt_keeps_the_clicked_object_only(session):
    from scipy import ndimage

    result, = session.segment(Prompt(points=[_ras_of_voxel(session.volume, (20, 18, 15))], point_labels=[True]))
    _, n = ndimage.label(result.mask)
    assert n == 1


def test_an_include_click_in_the_air_outside_the_body_is_refused(session):
    with pytest.raises(PromptError, match="outside the body"):
        session.segment(Prompt(points=[_ras_of_voxel(session.volume, (1, 1, 15))], point_labels=[True]))
