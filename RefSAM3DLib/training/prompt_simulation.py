"""Prompts for one training crop: what a clinician might type or click, and what it should give.

Per crop: one positive structure (present in the crop) with a SegVol-style random prompt mix --
text, text + clicks, text + box, clicks only, box only -- and negative text prompts naming
structures known to be absent from the crop (the presence head learns "not found" from them):
structures of the same case outside the crop (e.g. the right kidney when only the left one is in
view: this is what teaches laterality), names an exhaustive label map reports absent, and
structures of body regions the scan does not cover.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .vocabulary_bridge import StructureText

MIN_PRESENT_VOXELS = 20
# text alone is the hardest and the most used way to ask, so it gets the largest share; clicks and boxes
# without text must still be learned well enough that a click always lands in its mask
MODES = (("text", 0.45), ("text+points", 0.15), ("text+box", 0.1), ("points", 0.18), ("box", 0.12))


@dataclass
class PromptSample:
    text: str | None
    target: torch.Tensor  # (D, H, W) bool
    present: bool
    coords: np.ndarray  # (N, 3) window voxels (d, h, w)
    labels: np.ndarray  # (N,) 0 negative, 1 positive, 2/3 box corners
    structure: str


def _points(region: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    voxels = np.argwhere(region)
    if len(voxels) == 0:
        return np.zeros((0, 3))
    return voxels[rng.integers(len(voxels), size=n)].astype(np.float64)


def _clicks(target: np.ndarray, mode: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    coords, labels = [np.zeros((0, 3))], [np.zeros(0, dtype=np.int64)]
    if "points" in mode:
        pos = _points(target, int(rng.integers(1, 4)), rng)
        coords.append(pos)
        labels.append(np.ones(len(pos), dtype=np.int64))
        if rng.random() < 0.3:
            ring = ndimage.binary_dilation(target, iterations=3) & ~target
            neg = _points(ring, 1, rng)
            coords.append(neg)
            labels.append(np.zeros(len(neg), dtype=np.int64))
    if "box" in mode:
        voxels = np.argwhere(target)
        lo = voxels.min(0) - rng.integers(0, 3, 3)
        hi = voxels.max(0) + rng.integers(0, 3, 3)
        limit = np.asarray(target.shape) - 1
        coords.append(np.stack([np.clip(lo, 0, limit), np.clip(hi, 0, limit)]).astype(np.float64))
        labels.append(np.asarray([2, 3], dtype=np.int64))
    return np.concatenate(coords), np.concatenate(labels)


def _positive(name: str, values: tuple[int, ...], lab: np.ndarray, modality: str, texts: StructureText,
              rng: np.random.Generator) -> PromptSample:
    target = np.isin(lab, values)
    mode = MODES[int(rng.choice(len(MODES), p=[p for _, p in MODES]))][0]
    if len(values) > 1:
        mode = "text"  # a group is asked for by name; clicks would pick one member
    coords, labels = _clicks(target, mode, rng) if mode != "text" else (np.zeros((0, 3)), np.zeros(0, np.int64))
    text = texts.phrase(name, modality, rng) if mode.startswith("text") else None
    return PromptSample(text, torch.from_numpy(target), True, coords, labels, name)


def simulate_prompts(label: torch.Tensor, structures: dict[str, tuple[int, ...]], focus_value: int, modality: str,
                     negatives_pool: list[str], texts: StructureText, rng: np.random.Generator,
                     num_prompts: int = 2, group_probability: float = 0.25,
                     max_positives: int = 2) -> list[PromptSample]:
    """``num_prompts`` prompts for a crop: up to ``max_positives`` structures in view, the rest negatives.

    ``structures`` maps a prompt-able name to its label values (one for a label, several for a group such as
    "kidney" = left + right). The first positive is the structure the crop was centred on, or (sometimes) a
    group that contains it; with room for three prompts a second structure in view joins it.
    """
    lab = label.numpy()
    counts = dict(zip(*np.unique(lab, return_counts=True)))
    voxels = {name: sum(counts.get(v, 0) for v in values) for name, values in structures.items()}
    present = [name for name, n in voxels.items() if n >= MIN_PRESENT_VOXELS]
    samples: list[PromptSample] = []
    if present:
        focus = [n for n in present if structures[n] == (focus_value,)]
        groups = [n for n in present if len(structures[n]) > 1 and focus_value in structures[n]]
        if groups and rng.random() < group_probability:
            chosen = [groups[int(rng.integers(len(groups)))]]
        elif focus:
            chosen = focus[:1]
        else:
            chosen = [present[int(rng.integers(len(present)))]]
        others = [n for n in present if n not in chosen and len(structures[n]) == 1]
        while others and len(chosen) < min(max_positives, num_prompts - 1):
            # more structures in view, larger ones more often (they fill more of the crop)
            weights = np.sqrt(np.asarray([voxels[n] for n in others], dtype=np.float64))
            pick = others.pop(int(rng.choice(len(others), p=weights / weights.sum())))
            chosen.append(pick)
        for name in chosen:
            samples.append(_positive(name, structures[name], lab, modality, texts, rng))
    absent = [n for n in negatives_pool if voxels.get(n, 0) == 0]
    # hard negatives first: structures of this very scan that are outside the crop ("the right kidney is not
    # in this window"); the rest (other body regions, names absent from the whole scan) are easier
    hard = [n for n in absent if n in structures]
    empty = torch.zeros(label.shape, dtype=torch.bool)
    while len(samples) < num_prompts and absent:
        source = hard if hard and rng.random() < 0.6 else absent
        name = source[int(rng.integers(len(source)))]
        samples.append(PromptSample(texts.phrase(name, modality, rng), empty, False, np.zeros((0, 3)),
                                    np.zeros(0, dtype=np.int64), name))
    return samples


def corrective_click(prediction: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One click from the error region, SAM-Med3D style: inside a miss -> positive, inside a false hit -> negative.

    The click goes to the voxel deepest inside a randomly chosen error component (its distance maximum),
    which is where a person would click to fix it.
    """
    missed = target & ~prediction
    extra = prediction & ~target
    use_missed = missed.sum() >= extra.sum() if rng.random() < 0.8 else rng.random() < 0.5
    region = missed if (use_missed and missed.any()) or not extra.any() else extra
    if not region.any():
        return _points(target, 1, rng)[0], 1
    distance = ndimage.distance_transform_edt(region)
    best = np.argwhere(distance >= distance.max() * 0.9)
    click = best[int(rng.integers(len(best)))].astype(np.float64)
    return click, 1 if region is missed else 0
