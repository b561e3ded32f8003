"""Contrast-phase augmentation: re-enhance vessels and organs of a CT crop to a random phase.

Our training CTs are mostly non-contrast (aorta ~40 HU) while clinical abdominal CTs are usually
contrast-enhanced (aorta 150-350 HU, liver and spleen brighter, kidneys much brighter). Shifting
each labelled enhancing structure's mean to a random but realistic target teaches the model that
"aorta" is a shape and a place, not one grey value; it works in both directions (a CTA's bright
aorta is also moved towards non-contrast values).
"""
from __future__ import annotations

import numpy as np
import torch

# (keywords in the raw label name, (low, high) target mean HU)
ENHANCING_GROUPS = [
    (("aorta", "artery", "arteries", "trunk", "iliac_artery", "carotid", "subclavian", "celiac", "mesenteric"),
     (35.0, 380.0)),
    (("vena", "vein", "portal", "iliac_vena", "atrial_appendage"), (35.0, 220.0)),
    (("kidney", "renal"), (30.0, 220.0)),
    (("liver", "spleen", "pancreas", "adrenal"), (40.0, 150.0)),
    (("heart", "myocardium"), (35.0, 250.0)),
]


def target_range(raw_name: str) -> tuple[float, float] | None:
    name = raw_name.lower()
    if "tumor" in name or "tumour" in name or "cyst" in name or "lumen" in name:
        return None
    for keywords, hu in ENHANCING_GROUPS:
        if any(k in name for k in keywords):
            return hu
    return None


def simulate_contrast_phase(image: torch.Tensor, label: torch.Tensor, names: dict[int, str],
                            rng: np.random.Generator, strength: float = 1.0) -> torch.Tensor:
    """Shift each enhancing structure's HU so its mean lands on a random target of its group.

    One phase factor is drawn for the whole crop (arterial, venous or native look alike across
    organs), with a little independent jitter per structure.
    """
    phase = rng.uniform(0.0, 1.0)
    flat = label.reshape(-1).long()
    size = int(flat.max()) + 1 if flat.numel() else 1
    counts = torch.bincount(flat, minlength=size).double()
    sums = torch.bincount(flat, weights=image.reshape(-1).double(), minlength=size)
    shift = torch.zeros(size, dtype=torch.float64)
    for value, name in names.items():
        hu = target_range(name)
        if hu is None or value >= size or counts[value] < 5:
            continue
        lo, hi = hu
        target = lo + (hi - lo) * float(np.clip(phase + rng.normal(0, 0.12), 0, 1))
        shift[value] = strength * (target - float(sums[value] / counts[value]))
    return image + shift.to(image.dtype)[flat].reshape(image.shape)
