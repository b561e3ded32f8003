"""Dataset description files: which image goes with which label map, what each label value means.

Two layouts are read:
* RefSAM3D YAML/JSON: ``{name, root, cases: [{id, image, label, labels | label_names, modality,
  split, regions, exhaustive, partial}]}``. ``labels`` maps values to structure names and every value must
  occur in the label image; ``label_names`` points to a JSON name map (e.g. TotalSegmentator's)
  whose values may be absent. ``exhaustive`` says absent names are truly absent (model-made label
  maps that label everything they see), which makes them safe "not present" examples.
  An optional top-level ``prompt_structures`` list restricts which structures become positive prompts
  (label names or vocabulary ids); everything else stays background, absent names still serve as negatives.
  ``partial: true`` marks a partial label set: only the listed structures are known; any other structure
  is unknown here: never a negative prompt, never background (e.g. meshes of a few bones of one CT).
* MSD ``dataset.json``: ``training: [{image, label}]``, ``labels: {value: name}``, ``modality``.
Paths are relative to ``root`` (itself relative to the datalist file).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import DatasetError


@dataclass
class Case:
    id: str
    image: Path
    label: Path
    label_map: dict[int, str]  # value -> structure name (raw, as the source spells it)
    explicit: bool  # True: every value of label_map must occur in the label image
    modality: str = "CT"
    split: str = "train"
    regions: list[str] = field(default_factory=list)
    exhaustive: bool = False
    partial: bool = False  # only the listed structures are known; anything else is unknown, not background


@dataclass
class Datalist:
    name: str
    path: Path
    cases: list[Case]
    prompt_structures: list[str] | None = None  # if set: only these (label names / concept ids) are asked for

    def split(self, name: str) -> list[Case]:
        return [c for c in self.cases if c.split == name]


def _read_mapping(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DatasetError(f"{path}: datalist not found; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read the datalist ({getattr(error, 'strerror', None) or error}); "
                           "give a YAML or JSON file") from None
    try:
        data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'} "
                           f"({str(exc).splitlines()[0]}); fix the syntax") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a mapping with 'cases' (or an MSD dataset.json with 'training')")
    return data


def _label_names(value, base: Path, where: str) -> dict[int, str]:
    if isinstance(value, (str, Path)):
        file = base / value
        if not file.is_file():
            raise DatasetError(f"{file}: label name map not found ({where}); check the path")
        value = json.loads(file.read_text())
    if not isinstance(value, dict) or not value:
        raise DatasetError(f"{where}: labels must map label values to names, e.g. {{1: liver}}")
    out = {}
    for k, v in value.items():
        try:
            key = int(k)
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: label value {k!r} is not an integer") from None
        if key == 0:
            continue  # background
        out[key] = str(v)
    return out


def load_datalist(path: str | Path, root: str | Path | None = None) -> Datalist:
    path = Path(path)
    data = _read_mapping(path)
    base = Path(root) if root is not None else (path.parent / data.get("root", ".")).resolve()
    cases = []
    if "cases" in data:
        entries = data["cases"]
    elif "training" in data:  # MSD layout
        names = _label_names(data.get("labels", {}), base, f"{path} labels")
        modality = str(data.get("modality", {"0": "CT"}).get("0", "CT")) if isinstance(data.get("modality"), dict) \
            else str(data.get("modality", "CT"))
        entries = [{"id": Path(str(e["image"])).name.split(".")[0], "image": e["image"], "label": e["label"],
                    "labels": names, "modality": modality, "split": "train"} for e in data["training"]]
        entries = [dict(e, _names_from_dataset=True) for e in entries]
    else:
        raise DatasetError(f"{path}: no 'cases' list (RefSAM3D) or 'training' list (MSD dataset.json)")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DatasetError(f"{path}: the cases must be a list of mappings (id, image, label, labels)")
    seen = set()
    for n, entry in enumerate(entries):
        where = f"{path} case {entry.get('id', n)}"
        for key in ("image", "label"):
            if key not in entry:
                raise DatasetError(f"{where}: missing '{key}'")
        case_id = str(entry.get("id", f"case{n}"))
        if case_id in seen:
            raise DatasetError(f"{where}: duplicate case id {case_id!r}")
        seen.add(case_id)
        image, label = base / str(entry["image"]), base / str(entry["label"])
        for file in (image, label):
            if not file.exists():
                raise DatasetError(f"{file}: file listed in {path} (case {case_id}) does not exist; fix the path "
                                   f"or pass --data-root")
        if "labels" in entry:
            label_map, explicit = _label_names(entry["labels"], base, where), not entry.get("_names_from_dataset")
        elif "label_names" in entry:
            label_map, explicit = _label_names(entry["label_names"], base, where), False
        else:
            raise DatasetError(f"{where}: give 'labels' (value: name) or 'label_names' (a JSON name map)")
        modality = str(entry.get("modality", "CT")).upper().replace("MRI", "MR")
        if modality not in ("CT", "MR"):
            raise DatasetError(f"{where}: modality must be CT or MR, got {entry.get('modality')!r}")
        cases.append(Case(case_id, image, label, label_map, explicit, modality, str(entry.get("split", "train")),
                          [str(r) for r in entry.get("regions", [])], bool(entry.get("exhaustive", False)),
                          bool(entry.get("partial", False))))
    if not cases:
        raise DatasetError(f"{path}: the datalist has no cases")
    focus = data.get("prompt_structures")
    if focus is not None and (not isinstance(focus, list) or not all(isinstance(f, str) for f in focus)):
        raise DatasetError(f"{path}: prompt_structures must be a list of structure names")
    return Datalist(str(data.get("name", path.stem)), path, cases, focus)
