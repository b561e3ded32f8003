"""The pure rules of the slice walk, without a network: which boxes the next slice is prompted with, and how a
3D mask is cleaned into one object (on its bounding box, so a clinical-size CT costs no more than a small one), when
a walk starts again from a more confident slice and how two walks of one object merge."""
from __future__ import annotations

import numpy as np

from RefSAM3DLib.engine.delineate.consistency import keep_object
from RefSAM3DLib.engine.delineate.propagation import (
    FOREIGN_HU,
    PART_HU_SHIFT,
    TAPERED,
    divided,
    grew_past_its_end,
    parts_in_their_tissue,
    piece_boxes,
    pieces_meeting,
    split_by_guide,
    unheld_run,
    without_foreign_growth,
)
from RefSAM3DLib.engine.delineate.slice_segmenter import SliceMask
from RefSAM3DLib.engine.mask_bounds import mask_bounds, mask_box


def _slice_with(*blocks: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((200, 200), dtype=bool)
    for r0, c0, r1, c1 in blocks:
        mask[r0:r1 + 1, c0:c1 + 1] = True
    return mask


def test_distant_parts_of_an_organ_get_a_box_each():
    """Two lobes 80 px apart (the kidney lies between them): two boxes, each holding only its own lobe."""
    boxes = piece_boxes(_slice_with((20, 10, 90, 50), (30, 130, 60, 170)), gap_px=20)
    assert sorted(tuple(b) for b in boxes) == [(20, 10, 90, 50), (30, 130, 60, 170)]


def test_nearby_parts_share_a_box_and_specks_get_none():
    """A fragment 5 px from the organ stays in its box (the decoder drops it there, instead of following it as
    an object of its own); a speck under a tenth of the mask is not prompted at all."""
    near = piece_boxes(_slice_with((20, 10, 90, 50), (20, 56, 50, 70)), gap_px=20)
    assert [tuple(b) for b in near] == [(20, 10, 90, 70)]
    speck = piece_boxes(_slice_with((20, 10, 90, 50), (150, 150, 152, 152)), gap_px=20)
    assert [tuple(b) for b in speck] == [(20, 10, 90, 50)]
    assert [tuple(b) for b in piece_boxes(_slice_with((5, 6, 7, 8)), gap_px=20)] == [(5, 6, 7, 8)]


def test_a_part_that_leaves_its_tissue_is_dropped_and_the_others_go_on():
    """Two parts walked in one box: blood (350 HU) on the slice before. One part's next mask is on liver (75 HU):
    it is dropped, the part still on blood is kept. Where every part moved, none is dropped (the walk's end is the
    other rules' to judge)."""
    previous = _slice_with((20, 10, 40, 30), (20, 120, 40, 140))
    parts = piece_boxes(previous, gap_px=20)
    before = np.full(previous.shape, 350.0)
    now = before.copy()
    now[:, 100:] = 75.0  # the second part's side is liver on this slice
    decoded = [SliceMask(_slice_with((21, 11, 41, 31)), 0.9), SliceMask(_slice_with((21, 118, 43, 142)), 0.9)]
    kept = parts_in_their_tissue(decoded, parts, previous, (now, before), PART_HU_SHIFT)
    assert len(kept) == 1 and kept[0] is decoded[0]
    now[:] = 75.0
    assert parts_in_their_tissue(decoded, parts, previous, (now, before), PART_HU_SHIFT) == decoded


def test_a_piece_the_mask_gains_in_other_tissue_is_cut_and_growth_in_its_own_tissue_kept():
    """The liver's tip (46 HU) walked down: the next mask takes in a block of the kidney beside it (11 HU), which
    goes (the mask of the slice before and its one-pixel rim stay); a ring of liver around it stays; a gained
    piece under the size floor stays (a ragged edge is no evidence), and so does one of the same tissue however
    large."""
    previous = _slice_with((50, 50, 100, 100))
    values = np.full(previous.shape, 46.0)
    values[110:160, 40:110] = 11.0  # the kidney
    into_kidney = _slice_with((50, 50, 100, 100), (101, 50, 150, 100))
    kept = without_foreign_growth(into_kidney, previous, values, values, (1.0, 1.0), FOREIGN_HU)
    assert kept[50:101, 50:101].all() and not kept[102:].any()
    ring = _slice_with((47, 47, 103, 103))
    assert (without_foreign_growth(ring, previous, values, values, (1.0, 1.0), FOREIGN_HU) == ring).all()
    speck = _slice_with((50, 50, 100, 100), (101, 60, 106, 64))
    dark_speck = values.copy()
    dark_speck[101:107, 60:65] = 0.0
    assert (without_foreign_growth(speck, previous, dark_speck, values, (1.0, 1.0), FOREIGN_HU) == speck).all()
    liver = np.full(previous.shape, 46.0)
    assert (without_foreign_growth(into_kidney, previous, liver, liver, (1.0, 1.0), FOREIGN_HU) == into_kidney).all()


def test_a_region_s_two_parts_split_the_box_an_arch_would_offer():
    """Walking down from an aortic arch, the arch's box spans the ascending and the descending aorta and all
    between; the region's two parts on the next slice cut it into one box each. A box meeting one part (or none)
    stays whole: a region is only as exact as its registration."""
    arch = np.asarray([50.0, 20.0, 90.0, 160.0])
    parts = [np.asarray([40.0, 10.0, 80.0, 60.0]), np.asarray([60.0, 120.0, 100.0, 170.0])]
    assert [tuple(b) for b in split_by_guide([arch], parts)] == [(50, 20, 80, 60), (60, 120, 90, 160)]
    assert [tuple(b) for b in split_by_guide([arch], parts[:1])] == [tuple(arch)]
    assert [tuple(b) for b in split_by_guide([arch], [])] == [tuple(arch)]


def test_only_the_pieces_a_region_holds_are_kept_where_it_has_parts():
    """A second piece beside the one the region holds (the walk going on into the heart beside the descending
    aorta) is dropped; with no piece in the region's parts, the mask stays as it is."""
    mask = _slice_with((20, 10, 50, 40), (120, 120, 160, 160))
    kept = pieces_meeting(mask, [np.asarray([10.0, 0.0, 60.0, 50.0])])
    assert np.array_equal(kept, _slice_with((20, 10, 50, 40)))
    assert np.array_equal(pieces_meeting(mask, [np.asarray([0.0, 80.0, 10.0, 100.0])]), mask)


def test_the_region_part_a_walk_missed_longest_is_found_with_its_box():
    """Below an arch the region holds the ascending and the descending aorta; the walk took the ascending only on
    slices 10-49 (and both on 50-59): the run to start a second walk in is 10-49, with the descending's box. A
    part within the walk's reach (grown by the registration's error) counts as held."""
    region = np.zeros((60, 100, 100), bool)
    region[:, 20:30, 20:30] = True  # ascending
    region[10:, 60:70, 60:70] = True  # descending, from slice 10 down
    walked = np.zeros_like(region)
    walked[:, 21:31, 21:31] = True
    walked[50:, 62:72, 58:68] = True
    run = unheld_run(region, walked, gap_px=15.0, grow=3)
    assert sorted(run) == list(range(10, 50))
    assert tuple(run[30]) == (60, 60, 69, 69)
    walked[:, 62:68, 55:58] = True  # 2 px beside the descending part: within reach
    assert unheld_run(region, walked, gap_px=15.0, grow=3) == {}


def test_a_tube_has_divided_where_its_section_halves_or_falls_in_two_alike_pieces():
    """The aorta's bifurcation, walking down: one branch kept (area below 0.6 of the tube's recent calibre) or
    both (two pieces alike in size); a small branch beside it (the SMA by the aorta) is no division."""
    tube = _slice_with((50, 50, 69, 69))  # 400 px
    assert not divided(tube, calibre=420.0)
    assert divided(_slice_with((50, 50, 63, 63)), calibre=420.0)  # 196 px: one branch
    assert divided(_slice_with((50, 30, 64, 44), (50, 70, 64, 84)), calibre=420.0)  # two of 225 px
    assert not divided(_slice_with((50, 50, 69, 69), (50, 80, 54, 84)), calibre=420.0)  # 400 + 25 px


def test_an_object_that_narrowed_to_its_end_does_not_widen_again():
    """A first click's walk: sections (z, area, parts) in walk order. Until a section falls below a quarter of the
    widest the walk may widen again (a kidney past its hilum, a stomach's body); after, up to twice the narrowest
    since (+ 4 px: a tube's section wobbles) -- a walk that widens further past a liver's tip is in the kidney."""
    walk = [(60, 1000, 1), (59, 700, 1), (58, 300, 1), (57, 600, 1)]
    assert not grew_past_its_end(walk, 1100, TAPERED)  # never below a quarter of the widest: no end in sight
    tip = walk + [(56, 240, 1), (55, 200, 1)]
    assert not grew_past_its_end(tip, 404, TAPERED)  # 2 x 200 + 4: a wobble
    assert grew_past_its_end(tip, 420, TAPERED)  # the neighbour below the tip
    assert not grew_past_its_end([(10, 200, 1)], 600, TAPERED)  # a walk's start section is no end


def test_mask_bounds_are_the_inclusive_corners_of_the_occupied_voxels():
    mask = np.zeros((30, 40, 50), dtype=bool)
    assert mask_bounds(mask) is None and mask_box(mask) is None
    mask[4, 7, 9] = mask[12, 30, 2] = True
    lo, hi = mask_bounds(mask)
    assert lo.tolist() == [4, 7, 2] and hi.tolist() == [12, 30, 9]
    assert mask_box(mask, margin=3) == (slice(1, 16), slice(4, 34), slice(0, 13))


def test_keep_object_keeps_the_seeded_piece_and_large_ones_and_nothing_outside_them():
    mask = np.zeros((40, 60, 60), dtype=bool)
    mask[5:15, 5:20, 5:20] = True  # the seeded object
    mask[20:30, 40:55, 40:55] = True  # as large: kept
    mask[35:37, 2:4, 50:52] = True  # a speck: dropped
    kept = keep_object(mask, seeds=[(10, 10, 10)])
    expected = mask.copy()
    expected[35:37, 2:4, 50:52] = False
    assert np.array_equal(kept, expected)
    speck_seed = keep_object(mask, seeds=[(36, 3, 51)])  # a seed holds its piece, however small
    assert speck_seed[36, 3, 51] and speck_seed[10, 10, 10]


class _DrawsTheTruth:
    """Stands in for the decoder in these rule tests only: each slice's answer is the object's true cross-section
    inside the prompted box, and every decoded slice is recorded (the network's own walks are tested in
    test_delineation_clicks.py)."""

    def __init__(self, truth: np.ndarray) -> None:
        from types import SimpleNamespace

        self.truth = truth
        self.embeddings = SimpleNamespace(slices=SimpleNamespace(pixel_mm=(1.0, 1.0)))
        self.decoded: list[int] = []

    def segment(self, z, view, window, prompts):
        from RefSAM3DLib.engine.delineate.propagation import inside_box
        from RefSAM3DLib.engine.delineate.slice_segmenter import SliceMask

        self.decoded.append(z)
        return [[SliceMask(self.truth[z] & inside_box(p.box, self.truth.shape[1:]), 0.9)] for p in prompts]


def test_walks_of_different_prompts_decode_the_same_slices_and_still_find_the_ends():
    """Two walks through one object from different start slices (a box, then a text region's start): away from
    their starts every decoded slice lies on the stride's lattice, so most of the second walk's slices are the
    first's (their embeddings are encoded once per session); the object's last slices are still found exactly."""
    from types import SimpleNamespace

    from RefSAM3DLib.engine.delineate.propagation import StopRules, Stride, on_lattice, propagate

    assert on_lattice(37, 1, 3) == 39 and on_lattice(37, -1, 3) == 36 and on_lattice(39, 1, 6) == 42
    assert on_lattice(36, -1, 6) == 30 and on_lattice(5, 1, 1) == 6
    z, r, c = np.meshgrid(np.arange(100), np.arange(64), np.arange(64), indexing="ij")
    radius = 20 * np.sqrt(np.clip(1 - ((z - 50) / 38.5) ** 2, 0, None))  # an ellipsoid, slices 12..88
    truth = (r - 32) ** 2 + (c - 32) ** 2 < radius ** 2
    view = SimpleNamespace(scale_row=1.0, scale_col=1.0)
    walks = []
    for start in (37, 52):
        segmenter = _DrawsTheTruth(truth)
        found = {start}
        for direction in (1, -1):
            found |= set(propagate(segmenter, view, None, start, truth[start], direction, (0, 99),
                                   StopRules.boxed(), step=Stride(3, 6)))
        walks.append((start, set(segmenter.decoded), found))
    (_, first, found_first), (start, second, found_second) = walks
    assert found_first == found_second == set(range(12, 89))  # interpolated between decoded slices, ends exact
    ends = {z for z in second if z < 18 or z > 82}
    middle = second - ends - {start}
    assert middle and all(z % 3 == 0 for z in middle)
    assert len(middle & first) >= 0.75 * len(middle), (sorted(middle), sorted(first))


def test_a_walk_starts_again_only_from_a_slice_far_more_confident_than_its_start_and_not_from_a_tip():
    """The clicked slice rated 0.74 and the walk found slices at 0.94: start again from the most confident one with
    a body-sized mask (the 0.97 tip is too small to speak for the object); 0.05 better is not enough."""
    from RefSAM3DLib.engine.delineate.confident_walk import reseed_slice

    iou = {10: 0.74, 11: 0.80, 12: 0.94, 13: 0.90, 14: 0.97, 15: float("nan")}
    areas = {10: 145, 11: 160, 12: 240, 13: 200, 14: 30, 15: 0}
    assert reseed_slice(iou, areas, start_z=10) == 12
    assert reseed_slice({10: 0.74, 11: 0.79}, {10: 145, 11: 150}, start_z=10) is None


def test_two_walks_merge_slice_by_slice_by_the_decoders_confidence():
    """Each slice keeps the mask of the walk more confident there; a slice between decoded ones (NaN) is judged by
    its nearest decoded slice."""
    from RefSAM3DLib.engine.delineate.confident_walk import merge_by_confidence

    first, second = np.zeros((4, 8, 8), bool), np.zeros((4, 8, 8), bool)
    first[:, 2:4, 2:4] = True
    second[:, 2:7, 2:7] = True
    mask, iou = merge_by_confidence(first, {0: 0.9, 1: 0.6, 2: float("nan"), 3: 0.6},
                                    second, {0: 0.8, 1: 0.9, 2: float("nan"), 3: 0.95})
    assert mask[0].sum() == 4 and mask[1].sum() == 25 and mask[3].sum() == 25
    assert mask[2].sum() == 25  # nearest decoded slices: 1 and 3, where the second walk is the more confident
    assert iou[1] == 0.9 and iou[0] == 0.9


def test_two_walks_merge_only_on_the_slices_they_are_told_to():
    """A second walk that ends early must not blank the first walk's slices beyond its end (the nearest decoded
    slice would speak for them): ``where`` limits the judging to the slices both walks reach."""
    from RefSAM3DLib.engine.delineate.confident_walk import merge_by_confidence

    first, second = np.zeros((4, 8, 8), bool), np.zeros((4, 8, 8), bool)
    first[:, 2:4, 2:4] = True
    second[:2, 2:7, 2:7] = True
    both = first.any(axis=(1, 2)) & second.any(axis=(1, 2))
    mask, _ = merge_by_confidence(first, {0: 0.6, 1: 0.6, 2: 0.6, 3: 0.6}, second, {0: 0.9, 1: 0.9}, where=both)
    assert mask[0].sum() == 25 and mask[1].sum() == 25 and mask[2].sum() == 4 and mask[3].sum() == 4


def test_a_click_s_re_seeded_walk_that_stops_short_leaves_the_clicked_slices_to_the_first_walk():
    """A click on slice 1 walked slices 0-5 and re-seeded on slice 4, whose walk stopped at slice 3 (a vertebra's
    click re-seeded on the body above, stopped by the disc between): slices 0-2 -- the click's own among them --
    keep the first walk's mask; where the second walk went and is more confident, its mask; beyond both, nothing."""
    from RefSAM3DLib.engine.delineate.confident_walk import merge_reseeded

    first, second = np.zeros((7, 8, 8), bool), np.zeros((7, 8, 8), bool)
    first[:6, 2:4, 2:4] = True
    second[3:6, 2:7, 2:7] = True
    mask, _ = merge_reseeded(first, {z: 0.75 for z in range(6)}, second, {3: 0.9, 4: 0.95, 5: 0.9})
    assert [int(mask[z].sum()) for z in range(7)] == [4, 4, 4, 25, 25, 25, 0]


def test_a_heart_click_is_taken_only_where_its_object_holds_the_walk_s_and_more():
    """The click's object is the walk's seen whole when it holds the walk's mask on that slice and differs from it;
    one that agrees needs no walk, one that is smaller or elsewhere is another object."""
    from RefSAM3DLib.engine.delineate.heart_click import sees_more

    walked = _slice_with((10, 10, 20, 20))
    assert sees_more(_slice_with((10, 10, 20, 30)), walked)  # the spleen's tongue the walk never reached
    assert not sees_more(_slice_with((10, 10, 20, 21)), walked)  # the same object: nothing to check
    assert not sees_more(_slice_with((12, 12, 16, 16)), walked)  # a piece of it (a pancreas walk on bowel)
    assert not sees_more(_slice_with((30, 30, 45, 45)), walked)  # something else


def test_the_heart_click_lands_on_a_decoded_slice_deep_inside_away_from_where_the_scan_cuts_the_object():
    """An object cut by the scan's top is clicked inside, away from the cut (the edge counts as its surface: a region
    walk often started on that slice, and clicking there again sees nothing new); slices a walk only interpolated
    (NaN estimate) are never clicked."""
    from RefSAM3DLib.engine.delineate.box_delineation import Delineation
    from RefSAM3DLib.engine.delineate.heart_click import deepest_decoded_point

    mask = np.zeros((12, 40, 40), bool)
    mask[2:, 5:35, 5:35] = True  # runs out of the scan at the top (z = 11)
    spacing = np.asarray([3.0, 1.0, 1.0])
    decoded = {z: 0.9 for z in range(2, 12, 2)} | {z: float("nan") for z in range(3, 12, 2)}
    point = deepest_decoded_point(Delineation(mask, True, 10, iou=decoded), spacing)
    assert point is not None and point[0] == 6  # 15 mm from the sides; z = 7, as deep, was interpolated
    assert 15 <= point[1] <= 24 and 15 <= point[2] <= 24
    assert deepest_decoded_point(Delineation(mask, True, 10, iou={z: float("nan") for z in range(12)}), spacing) is None


def test_the_heart_click_decodes_only_boxes_that_can_hold_the_walk_s_mask():
    """A 60 x 30 mm mask on 1 mm pixels: boxes of half-width under 0.7 x 30 mm cannot give an object holding it."""
    from RefSAM3DLib.engine.delineate.heart_click import rungs_holding

    assert rungs_holding(_slice_with((10, 10, 69, 39)), (1.0, 1.0)) == (22.0, 32.0, 45.0, 64.0, 90.0, 128.0)
    assert rungs_holding(_slice_with((0, 0, 199, 199)), (2.0, 2.0)) == (90.0, 128.0)  # none that large: the two largest


def test_an_organ_loses_a_long_thin_run_at_its_end_but_keeps_a_short_tip():
    """Slices under a tenth of the widest section, consecutive from an end: over 30 mm they are a tube the walk
    followed out of the organ (a stomach's walk up the oesophagus), dropped; a few are the organ's tip, kept."""
    from RefSAM3DLib.engine.delineate.consistency import without_thin_tail

    mask = np.zeros((60, 40, 40), bool)
    mask[5:30, 5:35, 5:35] = True  # the organ, 900 pixels a slice
    mask[2:5, 18:22, 18:22] = True  # its tip: 3 slices of 16 pixels (7.5 mm at 2.5 mm)
    mask[30:55, 18:23, 18:23] = True  # a tube leaving it: 25 slices of 25 pixels (62.5 mm)
    kept = without_thin_tail(mask, slice_mm=2.5)
    assert kept[2:30].sum() == mask[2:30].sum() and not kept[30:].any()
    assert without_thin_tail(mask[:30], slice_mm=2.5).sum() == mask[:30].sum()  # a tip alone: nothing goes
