"""Prompt simulation: groups, laterality negatives, clicks inside their targets, corrective clicks, contrast phases."""
import numpy as np
import torch

from RefSAM3DLib.training.contrast_phase import simulate_contrast_phase, target_range
from RefSAM3DLib.training.prompt_simulation import corrective_click, simulate_prompts
from RefSAM3DLib.training.vocabulary_bridge import StructureText, structures_of


def _label():
    lab = np.zeros((32, 32, 32), np.int64)
    lab[4:14, 4:14, 18:28] = 3  # left kidney (patient left = +x in RAS -> larger w index)
    lab[18:28, 6:20, 6:20] = 5  # liver
    return torch.from_numpy(lab)


def test_groups_only_from_exhaustive_maps():
    names = {2: "kidney_right", 3: "kidney_left", 5: "liver"}
    assert structures_of(names, exhaustive=True)["kidney"] == (2, 3)
    assert "kidney" not in structures_of(names, exhaustive=False)


def test_prompts_target_what_they_name_and_negatives_are_absent():
    label = _label()
    structures = structures_of({2: "kidney_right", 3: "kidney_left", 5: "liver"}, exhaustive=True)
    texts = StructureText()
    negatives_seen = set()
    for seed in range(60):
        rng = np.random.default_rng(seed)
        prompts = simulate_prompts(label, structures, 3, "CT", ["kidney_right", "liver", "kidney_left", "brain"],
                                   texts, rng, num_prompts=3)
        assert len(prompts) == 3
        for p in prompts:
            if p.present:
                expected = np.isin(label.numpy(), structures[p.structure])
                assert np.array_equal(p.target.numpy(), expected)
                for c, lab in zip(p.coords, p.labels):
                    inside = expected[tuple(np.round(c).astype(int))]
                    assert inside if lab == 1 else (not inside if lab == 0 else True)
            else:
                assert not p.target.any() and len(p.labels) == 0
                negatives_seen.add(p.structure)
                assert p.structure not in ("kidney_left", "liver")  # never "absent" while in view
    assert "kidney_right" in negatives_seen  # the other side teaches laterality


def test_corrective_click_fixes_the_larger_error():
    target = np.zeros((20, 20, 20), bool)
    target[5:15, 5:15, 5:15] = True
    prediction = target.copy()
    prediction[5:15, 5:15, 5:10] = False  # a large miss
    prediction[0:2, 0:2, 0:2] = True  # a small false hit
    click, positive = corrective_click(prediction, target, np.random.default_rng(0))
    assert positive == 1 and target[tuple(click.astype(int))] and not prediction[tuple(click.astype(int))]


def test_contrast_phase_moves_vessel_means_into_range():
    image = torch.full((16, 16, 16), 40.0)
    label = torch.zeros((16, 16, 16), dtype=torch.long)
    label[4:8, 4:8, 4:8] = 1
    label[10:14, 10:14, 10:14] = 2
    out = simulate_contrast_phase(image, label, {1: "aorta", 2: "gallbladder"}, np.random.default_rng(1))
    lo, hi = target_range("aorta")
    assert lo <= float(out[label == 1].mean()) <= hi
    assert torch.equal(out[label == 2], image[label == 2])  # not an enhancing structure
    assert torch.equal(out[label == 0], image[label == 0])
