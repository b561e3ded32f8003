"""Mask loss weighting: absent-structure prompts count little, so 'empty' is not the safe answer to a name."""
from __future__ import annotations

import torch

from RefSAM3DLib.training.losses import mask_loss, soft_dice_loss


def test_weights_scale_each_prompts_share():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 4, 8, 8)
    present = (torch.rand(1, 1, 4, 8, 8) > 0.5).float()
    targets = torch.cat([present, torch.zeros_like(present)])
    per_prompt = [float(mask_loss(logits[i:i + 1], targets[i:i + 1])) for i in range(2)]
    assert torch.isclose(mask_loss(logits, targets), torch.tensor(sum(per_prompt) / 2), atol=1e-5)
    only_present = mask_loss(logits, targets, torch.tensor([1.0, 0.0]))
    assert torch.isclose(only_present, torch.tensor(per_prompt[0]), atol=1e-5)
    weighted = mask_loss(logits, targets, torch.tensor([1.0, 0.1]))
    assert torch.isclose(weighted, torch.tensor((per_prompt[0] + 0.1 * per_prompt[1]) / 1.1), atol=1e-5)
    assert soft_dice_loss(logits, targets).shape == (2,)


def test_an_empty_prediction_is_no_longer_the_cheapest_answer():
    """Two prompts to a crop: one present structure, one absent. With full weight on the absent one an all-empty
    output costs about as much as a correct mask that leaks a little into the absent prompt; down-weighted, the
    correct answer is clearly cheaper."""
    target = torch.zeros(1, 1, 4, 8, 8)
    target[..., 2:6, 2:6] = 1
    targets = torch.cat([target, torch.zeros_like(target)])
    empty = torch.full((2, 1, 4, 8, 8), -8.0)
    right = torch.where(targets.bool(), 8.0, -8.0)
    right[1] = torch.where(target[0].bool(), 0.5, -8.0)  # the absent prompt leaks a weak copy of the organ
    w = torch.tensor([1.0, 0.1])
    assert float(mask_loss(right, targets, w)) < 0.5 * float(mask_loss(empty, targets, w))
