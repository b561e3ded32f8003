"""Pieces around the lite model: anti-aliased resampling, click constraints, the interactive-evaluation
protocol, the cached slice features of training, and corrective rounds without the empty-mask shortcut."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from RefSAM3DLib.engine.click_constraints import apply_click_constraints
from RefSAM3DLib.engine.resample import antialias, resample_block
from RefSAM3DLib.evaluation.interactive import deepest_point, next_click


def test_downsampling_noise_is_close_to_area_averaging():
    torch.manual_seed(0)
    noise = torch.randn(60, 200, 200)  # e.g. 1 x 0.75 x 0.75 mm -> 3 mm: factors 3, 4, 4
    out = (20, 50, 50)
    plain = resample_block(noise, out).std()
    filtered = resample_block(antialias(noise, out), out).std()
    area = torch.nn.functional.avg_pool3d(noise[None], (3, 4, 4))[0].std()
    assert plain > 3 * area  # the defect: linear interpolation keeps most of the noise
    assert 0.5 * area < filtered < 1.2 * area
    flat = torch.full((30, 40, 50), 5.0)
    assert torch.allclose(resample_block(antialias(flat, (10, 10, 10)), (10, 10, 10)), torch.full((10, 10, 10), 5.0))
    assert torch.equal(antialias(noise, noise.shape), noise)  # nothing shrinks, nothing changes


def test_click_constraints_include_exclude_and_select():
    prob = torch.zeros(10, 20, 20)
    prob[2:8, 2:8, 2:8] = 0.9  # object A
    prob[2:8, 12:18, 12:18] = 0.9  # object B
    prob[5, 15, 3] = 0.1  # the model missed this voxel
    out = apply_click_constraints(prob, np.array([[5.0, 15.0, 3.0]]), np.array([1]), has_text=True)
    assert out[5, 15, 3] >= 0.5  # an include click is always in the result
    out = apply_click_constraints(prob, np.array([[5.0, 5.0, 5.0]]), np.array([1]), has_text=False)
    assert out[5, 5, 5] >= 0.5 and out[5, 15, 15] < 0.5  # clicks only: the clicked object, not every object
    out = apply_click_constraints(prob, np.array([[5.0, 5.0, 5.0], [5.0, 15.0, 15.0]]), np.array([1, 0]),
                                  has_text=True)
    assert out[5, 5, 5] >= 0.5 and out[4, 14, 14] < 0.5  # an exclude click removes the region it touches
    out = apply_click_constraints(prob, np.array([[5.0, 5.0, 5.0]]), np.array([0]), has_text=True)
    assert out[5, 5, 5] < 0.5 and out[3, 3, 3] >= 0.5  # text + exclude only: the ball is cleared, not the organ


def test_interactive_protocol_clicks_where_a_person_would():
    reference = np.zeros((20, 20, 20), bool)
    reference[4:16, 4:16, 4:16] = True
    spacing = np.ones(3)
    assert deepest_point(reference, spacing) in {(9, 9, 9), (9, 9, 10), (10, 10, 10), (9, 10, 9)} or \
        all(8 <= v <= 10 for v in deepest_point(reference, spacing))
    prediction = reference.copy()
    prediction[4:16, 4:16, 10:16] = False  # a large miss
    prediction[0:3, 0:3, 0:3] = True  # a small false positive
    voxel, positive = next_click(prediction, reference, spacing)
    assert positive and reference[voxel] and not prediction[voxel]
    prediction = reference.copy()
    prediction[16:20, 0:20, 0:20] = True  # a large leak
    voxel, positive = next_click(prediction, reference, spacing)
    assert not positive and prediction[voxel] and not reference[voxel]
    assert next_click(reference, reference, spacing) is None


def _case(tmp_path):
    from RefSAM3DLib.training.case_cache import PreparedCase

    rng = np.random.default_rng(0)
    image = rng.normal(40, 10, (6, 20, 24)).astype(np.float32)
    label = np.zeros((6, 20, 24), np.int16)
    label[1:5, 5:12, 6:14] = 1
    return PreparedCase("c1", image, label, {1: "liver"}, "CT", (0.0, 1.0), [], ["abdomen"], (3.0, 3.0, 3.0))


def test_slice_features_are_encoded_once_and_padded_to_the_window(tmp_path):
    from RefSAM3DLib.modeling.config import get_config
    from RefSAM3DLib.modeling.lite_refsam3d import LiteRefSAM3D
    from RefSAM3DLib.training.slice_features import encode_case

    model = LiteRefSAM3D(get_config("lite_tiny").replace(window_size=(8, 32, 32))).eval()
    case = _case(tmp_path)
    calls = []
    original = model.encode_slices
    model.encode_slices = lambda x: calls.append(len(x)) or original(x)
    first = encode_case(case, model, 0, tmp_path, progress=False)
    assert sum(calls) == 8  # 6 slices padded to one window of 8
    assert first.image.shape == (8, 32, 32) and first.label.shape == (8, 32, 32)
    assert first.maps[3].shape == (8, 256, 8, 8) and first.maps[3].dtype == np.float16
    assert int(first.label[1:5].sum()) == int(case.label.sum())
    again = encode_case(case, model, 0, tmp_path, progress=False)
    assert sum(calls) == 8  # read back from the cache, not re-encoded
    np.testing.assert_array_equal(np.asarray(again.maps[0]), np.asarray(first.maps[0]))
    direct = original(torch.from_numpy(np.asarray(first.image[:2], dtype=np.float32))[:, None])
    np.testing.assert_allclose(np.asarray(first.maps[3][:2], dtype=np.float32), direct[3].numpy(), atol=2e-2)


def test_corrective_rounds_never_feed_a_mask_prompt_to_an_absent_structure():
    from RefSAM3DLib.modeling.config import get_config
    from RefSAM3DLib.modeling.lite_refsam3d import LiteRefSAM3D
    from RefSAM3DLib.training.dataset import TrainingItem
    from RefSAM3DLib.training.objective import TrainingObjective
    from RefSAM3DLib.training.prompt_simulation import PromptSample

    torch.manual_seed(0)
    model = LiteRefSAM3D(get_config("lite_tiny")).train()
    seen = []
    original = model.decode

    def spy(stages, image, text, has_text, coords=None, labels=None, mask_input=None):
        seen.append((image.shape[0], mask_input is not None))
        return original(stages, image, text, has_text, coords, labels, mask_input)

    model.decode = spy
    target = torch.zeros(4, 32, 32, dtype=torch.bool)
    target[1:3, 8:20, 8:20] = True
    prompts = [PromptSample("liver", target, True, np.zeros((0, 3)), np.zeros(0, np.int64), "liver"),
               PromptSample("spleen", torch.zeros_like(target), False, np.zeros((0, 3)), np.zeros(0, np.int64),
                            "spleen"),
               PromptSample(None, target, True, np.array([[2.0, 12.0, 12.0]]), np.array([1]), "liver")]
    maps = [torch.randn(4, 128, 16, 16).half(), torch.randn(4, 160, 8, 8).half(), torch.randn(4, 320, 8, 8).half(),
            torch.randn(4, 256, 8, 8).half()]
    item = TrainingItem(torch.rand(1, 4, 32, 32) * 2 - 1, prompts, "c", slice_maps=maps)
    losses = TrainingObjective(model, corrective_probability=1.0, max_rounds=2)([item], seed=3)
    assert torch.isfinite(losses["total"])
    assert seen[0] == (3, False)  # first pass: every prompt, no mask prompt
    assert len(seen) > 1 and all(n == 2 and has_mask for n, has_mask in seen[1:])  # only the 2 present ones


@pytest.mark.parametrize("value", [0, 1])
def test_feature_dataset_items_are_reproducible(tmp_path, value):
    from RefSAM3DLib.modeling.config import get_config
    from RefSAM3DLib.modeling.lite_refsam3d import LiteRefSAM3D
    from RefSAM3DLib.training.feature_crops import SliceFeatureDataset
    from RefSAM3DLib.training.slice_features import encode_case

    config = get_config("lite_tiny")
    model = LiteRefSAM3D(config).eval()
    case = _case(tmp_path)
    features = {"c1": [encode_case(case, model, 0, tmp_path, progress=False)]}
    dataset = SliceFeatureDataset([case], features, config, epoch_length=4, seed=value, num_prompts=2)
    a, b = dataset[(0, 1)], dataset[(0, 1)]
    assert a.image.shape == (1, 4, 32, 32) and len(a.slice_maps) == 4 and a.slice_maps[0].shape[0] == 4
    assert torch.equal(a.image, b.image) and [p.text for p in a.prompts] == [p.text for p in b.prompts]
