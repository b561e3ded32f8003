"""The pure rules of the slice walk, without a network: which boxes the next slice is prompted with, and how a
3D mask is cleaned into one object (on its bounding box, so a clinical-size CT costs no more than a small one)."""
from __future__ import annotations

import numpy as np

from RefSAM3DLib.engine.delineate.consistency import keep_object
from RefSAM3DLib.engine.delineate.propagation import piece_boxes
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
