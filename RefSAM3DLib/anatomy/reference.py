"""The labelled reference CT shipped with the package, and which of its structures may guide a prompt.

It is the sample CT of ``make demo`` (TotalSegmentator's example abdomen CT, 3 mm) with its TotalSegmentator
labels. A structure guides only where the reference shows it (nearly) whole: a structure the scan cuts
through is useful only when the cut is small (the cut slice holds at most ``MAX_CUT_FRACTION`` of the
structure's widest slice), except the liver, spleen and stomach, whose domes the scan cuts a few centimetres
short (their boxes are extended by ``CUT_EXTENSION_MM`` on the cut side). The aorta, lungs, heart, femurs
and the like continue far outside the scan: the network alone answers for them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import SimpleITK as sitk

from ..cases.vocabulary_bridge import structures_of

MAX_CUT_FRACTION = 0.3
CUT_EXTENSION_MM = 30.0
DOME_CUT_STRUCTURES = frozenset({"liver", "spleen", "stomach"})


@dataclass(frozen=True)
class ReferenceStructure:
    name: str  # the TotalSegmentator name, e.g. "kidney_left"
    value: int
    volume_ml: float
    cut_low: np.ndarray  # (3,) bool per ITK axis (x, y, z): the scan cuts the structure at its low side
    cut_high: np.ndarray


@dataclass(frozen=True)
class Reference:
    image: sitk.Image  # CT, HU
    labels: sitk.Image  # uint8 label map on the same grid
    structures: dict[str, ReferenceStructure]  # only those that may guide a prompt
    groups: dict[str, tuple[str, ...]]  # concept id of a pair or set -> its labelled members ("kidney" -> left, right)


def _data_file(name: str):
    return resources.files("RefSAM3DLib") / "data" / name


def _structures(labels: np.ndarray, names: dict[int, str], voxel_ml: float) -> dict[str, ReferenceStructure]:
    """``labels`` is [z, y, x] (ITK array order)."""
    out = {}
    for value, name in names.items():
        mask = labels == value
        if not mask.any():
            continue
        cut_low, cut_high = np.zeros(3, bool), np.zeros(3, bool)
        usable = True
        for axis_zyx in range(3):
            area = mask.sum(axis=tuple(a for a in range(3) if a != axis_zyx))
            widest = area.max()
            xyz = 2 - axis_zyx
            for side, index in (("low", 0), ("high", -1)):
                if area[index] == 0:
                    continue
                (cut_low if side == "low" else cut_high)[xyz] = True
                if area[index] > MAX_CUT_FRACTION * widest and name not in DOME_CUT_STRUCTURES:
                    usable = False
        if usable:
            out[name] = ReferenceStructure(name, value, float(mask.sum() * voxel_ml), cut_low, cut_high)
    return out


@lru_cache(maxsize=1)
def load_reference() -> Reference:
    with resources.as_file(_data_file("sample_ct_abdomen_3mm.nii.gz")) as path:
        image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    with resources.as_file(_data_file("sample_ct_abdomen_3mm_labels.nii.gz")) as path:
        labels = sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkUInt8)
    names = {int(k): v for k, v in json.loads(_data_file("sample_ct_abdomen_3mm_labels.json").read_text()).items()}
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    groups = {group: tuple(names[v] for v in values)
              for group, values in structures_of(names, exhaustive=True).items() if len(values) > 1}
    return Reference(image, labels, _structures(sitk.GetArrayViewFromImage(labels), names, voxel_ml), groups)
