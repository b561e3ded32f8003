"""Where the registered reference puts a named structure on one patient's CT (fitted once per volume).

A hint is "located" (a mask and a box on the patient's grid), "outside" (the reference puts the whole
structure outside this scan: the prompt is answered "not found") or "unknown" (not a CT, the fit failed its
quality check, or the reference does not show the structure whole): then the network alone answers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..io.volume import Volume
from ..vocab.matcher import resolve
from .reference import CUT_EXTENSION_MM, load_reference
from .registration import AtlasFit, fit_reference, sitk_image

MIN_INSIDE_FRACTION = 0.05  # less of the reference structure than this inside the scan: "outside"


@dataclass(frozen=True)
class RegionHint:
    state: str  # "located", "outside" or "unknown"
    mask: np.ndarray | None = None  # bool [i, j, k] on the volume grid, when located
    box_ras: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    reason: str = ""


class AnatomyPrior:
    def __init__(self, volume: Volume, modality: str) -> None:
        self.volume = volume
        self.modality = modality
        self._fit: AtlasFit | None = None
        self._fitted = False
        self._labels: np.ndarray | None = None  # the reference labels warped onto the volume grid [i, j, k]
        self._extents: list = []  # per label value - 1: its bounding slices in ``_labels`` (None: not in the scan)

    def reference_names(self, text: str) -> tuple[str, ...] | None:
        """The reference structures a text means, or None when the reference cannot answer for it."""
        concept = resolve(text).concept
        if concept is None:
            return None
        reference = load_reference()
        for raw in concept.raw_names:
            members = reference.groups.get(raw, (raw,))  # "kidneys": both, as the training groups them
            if all(m in reference.structures for m in members):
                return members
        return None

    @property
    def fitted(self) -> bool:
        """Whether the (possibly refused) fit has been tried already."""
        return self._fitted

    def fit(self) -> AtlasFit | None:
        if not self._fitted:
            self._fitted = True
            if self.modality == "CT":
                patient = sitk_image(self.volume.array.astype(np.float32, copy=False), self.volume.geometry)
                fit = fit_reference(patient, load_reference().image)
                self._fit = fit if fit is not None and fit.usable else None
                if self._fit is not None:
                    self._labels = self._warp_labels(patient)
                    self._extents = ndimage.find_objects(self._labels)
        return self._fit

    def _warp_labels(self, patient: sitk.Image) -> np.ndarray:
        grid = sitk.Image(patient.GetSize(), sitk.sitkUInt8)
        grid.CopyInformation(patient)
        warped = sitk.Resample(load_reference().labels, grid, self._fit.transform, sitk.sitkNearestNeighbor, 0,
                               sitk.sitkUInt8)
        return np.transpose(sitk.GetArrayFromImage(warped), (2, 1, 0))

    def hint(self, text: str) -> RegionHint:
        names = self.reference_names(text)
        if names is None:
            return RegionHint("unknown", reason="the reference CT does not show this structure whole")
        if self.modality != "CT":
            return RegionHint("unknown", reason="the reference is a CT; this volume is not")
        if self.fit() is None:
            return RegionHint("unknown", reason="the reference CT could not be fitted to this scan")
        reference = load_reference()
        values = [reference.structures[n].value for n in names]
        extents = [self._extents[v - 1] for v in values if v - 1 < len(self._extents) and self._extents[v - 1]]
        mask = np.zeros(self._labels.shape, dtype=bool)
        box = (slice(0, 0),) * 3
        if extents:  # only the organ's own box is searched: a whole clinical CT per prompt costs ~1 s
            box = tuple(slice(min(e[a].start for e in extents), max(e[a].stop for e in extents)) for a in range(3))
            mask[box] = np.isin(self._labels[box], values)
        inside_ml = mask.sum() * self.volume.geometry.voxel_volume_ml * self._volume_scale()
        expected_ml = sum(reference.structures[n].volume_ml for n in names)
        if inside_ml < MIN_INSIDE_FRACTION * expected_ml:
            return RegionHint("outside", reason=f"the fitted reference puts {'/'.join(names)} outside this scan")
        return RegionHint("located", mask, self._box(mask, box, names), reason="fitted reference CT")

    def _volume_scale(self) -> float:
        """Patient mL -> reference mL under the fitted transform (the affine part's determinant)."""
        affine = self._fit.transform.GetNthTransform(1)
        return float(abs(np.linalg.det(np.asarray(affine.GetMatrix()).reshape(3, 3))))

    def _box(self, mask: np.ndarray, box: tuple[slice, ...], names: tuple[str, ...]):
        """RAS corners of the mask's box (searched within ``box``), grown on each side where the reference scan
        cuts the structure."""
        geometry = self.volume.geometry
        voxels = np.argwhere(mask[box]) + np.asarray([b.start for b in box])
        lo, hi = voxels.min(0).astype(float), voxels.max(0).astype(float)
        reference = load_reference()
        directions = np.asarray(reference.image.GetDirection()).reshape(3, 3) * np.array([[-1.0], [-1.0], [1.0]])
        for name in names:
            structure = reference.structures[name]
            for axis in range(3):
                for cut, sign in ((structure.cut_low[axis], -1.0), (structure.cut_high[axis], 1.0)):
                    if not cut:
                        continue
                    towards = sign * directions[:, axis]  # RAS direction in which the structure continues
                    alignment = geometry.direction.T @ towards
                    a = int(np.argmax(np.abs(alignment)))
                    grow = CUT_EXTENSION_MM / geometry.spacing[a]
                    if alignment[a] > 0:
                        hi[a] += grow
                    else:
                        lo[a] -= grow
        limit = np.asarray(geometry.shape, dtype=float) - 1
        corners = geometry.ijk_to_ras(np.stack([np.clip(lo, 0, limit), np.clip(hi, 0, limit)]))
        return tuple(float(v) for v in corners[0]), tuple(float(v) for v in corners[1])
