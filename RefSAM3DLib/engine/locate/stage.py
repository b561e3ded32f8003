"""The locate stage of one session: where a text prompt points, from the registered reference CTs.

The network's own text grounding was learned from one labelled abdominal CT and does not find organs on new
patients; registering labelled reference CTs onto the patient does. Each reference is fitted once per session,
at the first text prompt it labels that those registered already cannot place in the scan (seconds, reported as
a step, cancellable between references), its labels are warped onto the registration grid, and each text prompt
is answered by fusing the references that know the structure and fit well around it (``fusion``). The answer is
a ``Region``:

* "located": a region on the patient (its box, the slice where it is widest and its box there, a coarse mask)
  that the delineation stage turns into the final mask;
* "outside": the references that fit put the structure outside this scan -- "not found", nothing decoded;
* "unknown": not a CT, no reference knows the structure (a lesion, a nodule), or none fits around it -- the
  caller decides (the network's text path, or asking the user for a click or a box).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ...io.volume import Volume
from ...vocab.concepts import Concept
from ...vocab.matcher import resolve
from ..progress import check_cancel, report
from .fusion import FusedRegion, Vote, fuse
from .references import Reference, load_reference, reference_ids
from .registration import AtlasFit, fit_reference, local_correlation, lps_grid, sitk_image

MIN_INSIDE_FRACTION = 0.05  # less of the structure than this inside the scan: "outside"
MIN_FIT_CORRELATION = 0.4  # a fit this poor over the whole overlap is no fit (a phantom, a non-body scan): unused.
# Measured: real CTs 0.55-0.9, synthetic body-like test volumes 0.32-0.34
NEIGHBOURHOOD_MM = 20.0  # the local fit is judged in the structure's box grown by this
OPEN_INSIDE_MM = 20.0  # a region cut this far inside the scan's edge: a reference not registered yet may show more


@dataclass
class Region:
    state: str  # "located", "outside" or "unknown"
    reason: str = ""
    lo_ijk: np.ndarray | None = None  # the region's box on the patient grid (continuous voxel indices, corners)
    hi_ijk: np.ndarray | None = None
    widest_ras: np.ndarray | None = None  # (8, 3) corners of the region's box on its widest axial slice
    mask_points_ras: np.ndarray | None = None  # (N, 3) centres of the core's grid cells (a coarse mask)
    cut_ras: list[np.ndarray] = field(default_factory=list)  # unit RAS directions in which it may continue
    confidence: float = 0.0
    references: tuple[str, ...] = ()
    tentative: bool = False  # only poorly fitting references place it: the image must confirm it
    bone: bool = False  # a bone: past the region it runs into the next one across a joint
    divides_below: bool = False  # a vessel or airway that ends below by dividing (the aorta, the trachea)
    open_inside: bool = False  # the references placing it cut it well inside this scan: it goes on, unseen
    tube: bool = False  # a vessel, airway or gut tube: small in cross-section all along (``Concept.tube``)
    one_tissue: bool = False  # an organ of one tissue: other tissue its walk gains is a neighbour's (``Concept``)


def _final(region: Region) -> bool:
    """A located region no reference still to register would change: placed by references that fit around it, and
    not cut by all of them well inside the scan."""
    return region.state == "located" and not region.tentative and not region.open_inside


@dataclass
class _Fitted:
    reference: Reference
    fit: AtlasFit
    labels: np.ndarray  # its label map warped onto the registration grid [z, y, x]
    scale: float  # reference mL per patient mL under the fit


class LocateStage:
    def __init__(self, volume: Volume, modality: str, leave_out: tuple[str, ...] = ()) -> None:
        self.volume = volume
        self.modality = modality
        self.leave_out = tuple(leave_out)
        self._fits: dict[str, _Fitted | None] = {}  # reference id -> its fit; None: it does not fit this scan
        self._grid: sitk.Image | None = None

    @property
    def fitted(self) -> list[_Fitted]:
        """The references fitted so far that fit this scan, in the manifest's order."""
        return [self._fits[i] for i in reference_ids(self.leave_out) if self._fits.get(i) is not None]

    def references(self) -> list[Reference]:
        return [load_reference(i) for i in reference_ids(self.leave_out)]

    def knows(self, text: str) -> bool:
        """Whether some reference labels the structure a text means (it may still be outside this scan)."""
        return bool(self._knowing(text))

    def needs_fitting(self, text: str) -> bool:
        """Whether answering ``text`` may mean registering a reference first (the slow step of the first prompts)."""
        return self.modality == "CT" and any(r.id not in self._fits for r in self._knowing(text))

    def _knowing(self, text: str) -> list[Reference]:
        concept = resolve(text).concept
        if concept is None:
            return []
        return [r for r in self.references() if r.members(concept.raw_names)]

    # ------------------------------------------------------------------ fitting, once per reference and session
    def fit(self, progress=None, cancel=None, references: list[Reference] | None = None) -> list[_Fitted]:
        """Register ``references`` (default: all) not registered yet. A reference that labels only a few
        structures (the sonogym CTs) is fitted when a prompt first asks for one of them, so a session that never
        does so never pays for it."""
        if self.modality != "CT":
            return []
        todo = [r for r in (self.references() if references is None else references) if r.id not in self._fits]
        if todo:
            patient = sitk_image(self.volume.array, self.volume.geometry)
            if self._grid is None:
                self._grid = lps_grid(patient)
            grid = self._grid
            for n, reference in enumerate(todo):
                report(progress, n, len(todo), f"fitting reference CT {n + 1}/{len(todo)}")
                check_cancel(cancel)
                fit = fit_reference(patient, reference.image, patient_grid=grid)
                if fit is None or fit.correlation < MIN_FIT_CORRELATION:
                    self._fits[reference.id] = None
                    continue
                empty = sitk.Image(grid.GetSize(), sitk.sitkUInt8)
                empty.CopyInformation(grid)
                warped = sitk.Resample(reference.labels, empty, fit.transform, sitk.sitkNearestNeighbor, 0,
                                       sitk.sitkUInt8)
                affine = fit.transform.GetNthTransform(1)
                scale = float(abs(np.linalg.det(np.asarray(affine.GetMatrix()).reshape(3, 3))))
                self._fits[reference.id] = _Fitted(reference, fit, sitk.GetArrayFromImage(warped), scale)
            check_cancel(cancel)
        return self.fitted

    def fit_for(self, text: str, progress=None, cancel=None) -> list[_Fitted]:
        """Register the references that label what ``text`` means (those not registered yet)."""
        return self.fit(progress, cancel, self._knowing(text))

    # ------------------------------------------------------------------ one prompt
    def locate(self, text: str, progress=None, cancel=None) -> Region:
        concept = resolve(text).concept
        if concept is None:
            return Region("unknown", "no reference knows this structure")
        if self.modality != "CT":
            return Region("unknown", "the reference scans are CT; this volume is not")
        knowing = self._knowing(text)
        if not knowing:
            return Region("unknown", "no reference labels this structure")
        region = None
        if any(r.id in self._fits for r in knowing):  # those registered already may answer it
            region = self._answer(concept)
            if _final(region):
                return region
        for group in ([r for r in knowing if not r.supplement], knowing):  # the supplements only if need be
            if any(r.id not in self._fits for r in group):
                self.fit(progress, cancel, group)
                region = self._answer(concept)
                if _final(region):
                    return region
        return region  # every reference that knows it registered, and answered

    def _answer(self, concept) -> Region:
        """The fused answer of the references registered so far that label the concept. A located region from
        references that fit around it is final: registering one more reference (a whole-trunk CT, 13 s on a
        512 x 512 x 300 CT) for a structure already placed would cost a later prompt its 10 s budget -- unless
        they all cut it well inside the scan (``Region.open_inside``: the sample CT holds the aorta only below
        the diaphragm; on a chest CT the CTA reference shows the rest)."""
        votes, names = [], []
        for item in self.fitted:
            members = item.reference.members(concept.raw_names)
            if members is None:
                continue
            votes.append(self._vote(item, members))
            names.append(item.reference.id)
        fused = fuse(votes) if votes else None
        if fused is None:
            return Region("unknown", "no reference CT fits this scan around the structure")
        if fused.inside_fraction < MIN_INSIDE_FRACTION or not fused.core.any():
            return Region("outside", "the fitted reference CTs put it outside this scan",
                          confidence=fused.confidence, references=tuple(names))
        return self._region(fused, tuple(names), concept)

    def _vote(self, item: _Fitted, members: tuple[str, ...]) -> Vote:
        values = [item.reference.structures[m].value for m in members]
        mask = np.isin(item.labels, values)
        expected_ml = sum(item.reference.structures[m].volume_ml for m in members) / max(item.scale, 1e-6)
        grid_ml = float(np.prod(self._grid.GetSpacing())) / 1000.0
        weight = item.fit.correlation  # a structure the fit puts outside the scan: the global fit speaks for it
        if mask.any():
            grow = int(np.ceil(NEIGHBOURHOOD_MM / self._grid.GetSpacing()[0]))
            nz = np.argwhere(mask)
            box = tuple(slice(max(0, lo - grow), hi + grow + 1) for lo, hi in zip(nz.min(0), nz.max(0)))
            weight = local_correlation(item.fit, box)
        cut_low = np.any([self._cut_lps(item.reference, m, low=True) for m in members], axis=0)
        cut_high = np.any([self._cut_lps(item.reference, m, low=False) for m in members], axis=0)
        seen = np.isfinite(sitk.GetArrayViewFromImage(item.fit.warped))
        return Vote(mask, weight, expected_ml / grid_ml, (cut_low, cut_high), seen)

    @staticmethod
    def _cut_lps(reference: Reference, name: str, low: bool) -> np.ndarray:
        """(3,) bool per LPS axis x, y, z: the reference scan cuts the structure on its low (high) LPS side."""
        structure = reference.structures[name]
        direction = np.asarray(reference.image.GetDirection()).reshape(3, 3)
        out = np.zeros(3, bool)
        for axis in range(3):
            for cut, sign in ((structure.cut_low[axis], -1.0), (structure.cut_high[axis], 1.0)):
                if not cut:
                    continue
                towards = sign * direction[:, axis]  # LPS direction in which the structure continues
                lps_axis = int(np.argmax(np.abs(towards)))
                if (towards[lps_axis] < 0) == low:
                    out[lps_axis] = True
        return out

    def _region(self, fused: FusedRegion, names: tuple[str, ...], concept: Concept) -> Region:
        grid, geometry = self._grid, self.volume.geometry
        nz = np.argwhere(fused.core)  # [z, y, x] indices of the LPS registration grid
        lo, hi = nz.min(0), nz.max(0)

        def to_ras(zyx: np.ndarray) -> np.ndarray:
            xyz = np.asarray(zyx, float)[:, ::-1]
            lps = np.asarray(grid.GetOrigin()) + xyz * np.asarray(grid.GetSpacing())
            return lps * np.asarray([-1.0, -1.0, 1.0])

        corners = np.array([[a, b, c] for a in (lo[0] - 0.5, hi[0] + 0.5) for b in (lo[1] - 0.5, hi[1] + 0.5)
                            for c in (lo[2] - 0.5, hi[2] + 0.5)])
        ijk = geometry.ras_to_ijk(to_ras(corners))
        areas = fused.core.sum(axis=(1, 2))
        widest = int(np.argmax(areas))
        wy, wx = np.nonzero(fused.core[widest])
        flat = np.array([[widest, b, c] for b in (wy.min() - 0.5, wy.max() + 0.5) for c in (wx.min() - 0.5,
                                                                                           wx.max() + 0.5)])
        cut, open_inside = [], False
        room = OPEN_INSIDE_MM / np.asarray(grid.GetSpacing())[::-1]  # [z, y, x] grid voxels
        for axis in range(3):
            zyx = 2 - axis
            for flag, sign in ((fused.cut_low[axis], -1.0), (fused.cut_high[axis], 1.0)):
                if flag:
                    lps = np.zeros(3)
                    lps[axis] = sign
                    cut.append(lps * np.asarray([-1.0, -1.0, 1.0]))
                    edge = lo[zyx] if sign < 0 else fused.core.shape[zyx] - 1 - hi[zyx]
                    open_inside |= bool(edge >= room[zyx])
        return Region("located", "fused reference CTs", ijk.min(0), ijk.max(0), to_ras(flat), to_ras(nz), cut,
                      fused.confidence, names, fused.tentative, concept.bone, concept.divides_below, open_inside,
                      concept.tube, concept.one_tissue)
