"""The labelled reference CTs shipped with the package (``data/references.json``), and what each can answer.

Each reference is a CT with a label map of named structures (TotalSegmentator naming), its source and licence
(``datasets/build_references.py`` builds them; the README and the model card list them). A structure answers
text prompts wherever the reference shows it; where the reference's scan cuts it (the liver's dome at the top
of an abdominal scan, the kidneys at the bottom of a chest scan), it still places the part it holds -- a seed
the delineation stage grows from -- and the cut side is recorded so the search looks beyond it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import SimpleITK as sitk

from ...cases.vocabulary_bridge import structures_of

MANIFEST = "references.json"


@dataclass(frozen=True)
class ReferenceStructure:
    name: str  # the TotalSegmentator name, e.g. "kidney_left"
    value: int
    volume_ml: float
    cut_low: np.ndarray  # (3,) bool per ITK axis (x, y, z): the scan cuts the structure at its low side
    cut_high: np.ndarray

    @property
    def whole(self) -> bool:
        return not (self.cut_low.any() or self.cut_high.any())


@dataclass(frozen=True)
class Reference:
    id: str
    image: sitk.Image  # CT, HU, float32
    labels: sitk.Image  # uint8 label map on the same grid
    structures: dict[str, ReferenceStructure]
    groups: dict[str, tuple[str, ...]]  # concept id of a pair or set -> its labelled members ("kidney" -> both)
    exhaustive: bool  # every structure of its scheme it shows is labelled (absent names are absent)
    source: str
    licence: str
    evaluation_cases: tuple[str, ...]  # datalist case ids of this very scan: left out when evaluating on them
    # registered only where the other references leave a structure unplaced, or cut well inside the scan: a crop
    # (the CTA reference, a 180 mm field) fits a scan it barely overlaps with a confident local correlation and a
    # wrong place (a 20-slice slab: aorta region Dice 0.23 with it, 0.51 without; text Dice 0.00 against 0.955)
    supplement: bool = False

    def members(self, raw_names: tuple[str, ...]) -> tuple[str, ...] | None:
        """The labelled structures a concept's raw names mean here (a pair resolves to both), or None."""
        for raw in raw_names:
            members = self.groups.get(raw, (raw,))
            if all(m in self.structures for m in members):
                return members
        return None


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
        for axis_zyx in range(3):
            area = mask.sum(axis=tuple(a for a in range(3) if a != axis_zyx))
            cut_low[2 - axis_zyx] = bool(area[0] > 0)
            cut_high[2 - axis_zyx] = bool(area[-1] > 0)
        out[name] = ReferenceStructure(name, value, float(mask.sum() * voxel_ml), cut_low, cut_high)
    return out


def _load(entry: dict) -> Reference:
    with resources.as_file(_data_file(entry["ct"])) as path:
        image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    with resources.as_file(_data_file(entry["labels"])) as path:
        labels = sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkUInt8)
    names = {int(k): v for k, v in json.loads(_data_file(entry["names"]).read_text()).items()}
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    exhaustive = bool(entry.get("exhaustive", False))
    groups = {group: tuple(names[v] for v in values)
              for group, values in structures_of(names, exhaustive=exhaustive).items() if len(values) > 1}
    return Reference(entry["id"], image, labels, _structures(sitk.GetArrayViewFromImage(labels), names, voxel_ml),
                     groups, exhaustive, entry.get("source", ""), entry.get("licence", ""),
                     tuple(entry.get("evaluation_cases", ())), bool(entry.get("supplement", False)))


@lru_cache(maxsize=1)
def manifest() -> tuple[dict, ...]:
    return tuple(json.loads(_data_file(MANIFEST).read_text()))


@lru_cache(maxsize=8)
def load_reference(reference_id: str) -> Reference:
    for entry in manifest():
        if entry["id"] == reference_id:
            return _load(entry)
    raise KeyError(f"no reference {reference_id!r}; known: {[e['id'] for e in manifest()]}")


def reference_ids(leave_out: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(e["id"] for e in manifest() if e["id"] not in leave_out)
