"""Training losses: Dice + BCE on the mask (per prompt), BCE on the presence logit.

Soft Dice uses +1 smoothing so that prompts whose target is empty (structures absent from the
crop) are well defined: their Dice term pushes the predicted volume towards zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Mean over the batch of 1 - Dice; logits/target (B, 1, D, H, W)."""
    prob = torch.sigmoid(logits.float()).flatten(1)
    t = target.float().flatten(1)
    inter = (prob * t).sum(1)
    return (1 - (2 * inter + smooth) / (prob.sum(1) + t.sum(1) + smooth)).mean()


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return soft_dice_loss(logits, target) + F.binary_cross_entropy_with_logits(logits.float(), target.float())


def presence_loss(presence_logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(presence_logits.float(), present.float())
