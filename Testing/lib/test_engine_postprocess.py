"""Post-processing on the model grid: largest component, hole filling, minimum size; default leaves it alone."""
import numpy as np

from RefSAM3DLib.engine.postprocess import PostProcessing


def _scene():
    p = np.zeros((20, 20, 20), np.float32)
    p[2:12, 2:12, 2:12] = 0.9  # big cube with a hole
    p[6:8, 6:8, 6:8] = 0.1
    p[15:17, 15:17, 15:17] = 0.8  # small blob
    p[0, 19, 19] = 0.3  # below threshold
    return p


def test_default_changes_nothing():
    p = _scene()
    assert np.array_equal(PostProcessing().apply(p, 1.0), p)


def test_largest_component_and_fill_holes():
    out = PostProcessing(largest_component=True, fill_holes=True).apply(_scene(), 1.0)
    mask = out >= 0.5
    assert mask[2:12, 2:12, 2:12].all()  # hole filled
    assert not mask[15:17, 15:17, 15:17].any()  # small blob removed
    assert mask.sum() == 1000


def test_minimum_size_in_millilitres():
    p = _scene()
    out = PostProcessing(min_size_ml=0.009).apply(p, voxel_ml=0.001)  # the 8-voxel blob is 0.008 mL
    assert not (out[15:17, 15:17, 15:17] >= 0.5).any() and (out[2:4, 2:4, 2:4] >= 0.5).all()


def test_presence_gate_is_flat_above_the_threshold_and_closes_below():
    from RefSAM3DLib.engine.decode_passes import presence_gate

    assert presence_gate(0.9, 0.5) == presence_gate(0.5, 0.5) == 1.0
    assert 0.0 < presence_gate(0.42, 0.5) < 1.0
    assert presence_gate(0.2, 0.5) == 0.0
