"""The structure catalogue: one `Concept` per segmentable structure, loaded from structures.json.

Every segment RefSAM3D writes gets its name, colour and coded terminology (Slicer TerminologyEntry, DICOM-SEG
property category/type/modifier) from here, so a left kidney is coded the same way whether the user typed
"lt kidney", the model was trained on "kidney_left", or a label map came from TotalSegmentator.
Codes and colours are transcribed from public sources named per concept (`code_source`, `color_source`).
"""
from __future__ import annotations

import colorsys
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .codes import Code, Terminology

DATA_FILE = Path(__file__).with_name("structures.json")

# Generic codes for text that matches no concept (all from Slicer's General Anatomy terminology).
TISSUE = Code("85756007", "SCT", "Tissue")
ANATOMICAL_STRUCTURE = Code("123037004", "SCT", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED_STRUCTURE = Code("49755003", "SCT", "Morphologically Altered Structure")
MASS = Code("4147007", "SCT", "Mass")
CYST = Code("367643001", "SCT", "Cyst")
EDEMA = Code("79654002", "SCT", "Edema")

_CYST_WORDS = {"cyst", "cysts", "cystic"}
_EDEMA_WORDS = {"edema", "oedema", "edematous", "oedematous"}
_BONE_IDS = ("vertebrae", "rib", "femur", "hip", "humerus", "scapula", "clavicula", "sacrum", "skull", "sternum",
             "costal_cartilages")  # concept id prefixes of the skeleton
_DIVIDES_BELOW_IDS = ("aorta", "trachea", "iliac_artery")  # vessels and airways whose lower end is a division
_TUBE_IDS = _DIVIDES_BELOW_IDS + ("esophagus", "inferior_vena_cava", "portal_vein", "pulmonary", "iliac_vena",
                                  "common_carotid", "brachiocephalic", "subclavian", "duodenum", "small_bowel",
                                  "colon")  # vessels, airways and gut: long, of small cross-section all along
_GUT_IDS = ("esophagus", "stomach", "duodenum", "small_bowel", "colon")  # gas, fluid and food in one lumen


@dataclass(frozen=True)
class Concept:
    """One structure: how it is named, coded and coloured, and which raw label names mean it."""

    id: str  # snake_case; the TotalSegmentator name when one exists, e.g. "kidney_left"
    name: str  # canonical lowercase name, e.g. "left kidney"
    synonyms: tuple[str, ...]  # lowercase phrases a person may type (the name included)
    laterality: str | None  # "left", "right" or None (midline, both sides, or side-less)
    category: Code
    type: Code
    modifier: Code | None
    anatomic_region: Code | None  # e.g. Liver for "liver tumor" (type Neoplasm)
    anatomic_region_modifier: Code | None  # e.g. Left for "left kidney cyst"
    color: tuple[int, int, int]  # RGB 0..255
    region: str | None = None  # body region hint: abdomen, chest, pelvis, head, neck, spine, limb
    modality_ok: tuple[str, ...] | None = None  # None: any modality
    totalsegmentator_names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # raw label names used by other data sets
    code_source: str = ""
    color_source: str = ""
    note: str | None = None

    @property
    def display_name(self) -> str:
        """The segment name shown to the user (Slicer labels are lowercase: "left kidney")."""
        return self.name

    @property
    def terminology(self) -> Terminology:
        return Terminology(self.category, self.type, self.modifier, self.anatomic_region,
                           self.anatomic_region_modifier)

    @property
    def color_float(self) -> tuple[float, float, float]:
        r, g, b = self.color
        return (r / 255.0, g / 255.0, b / 255.0)

    @property
    def bone(self) -> bool:
        """A bone meets its neighbour at a joint of the same density, where an image walk cannot tell them apart."""
        return self.id.startswith(_BONE_IDS)

    @property
    def divides_below(self) -> bool:
        """A vessel or airway of slowly changing calibre whose lower end is a division (the aorta into the iliac
        arteries, the trachea into the bronchi): where its cross-section suddenly halves, a walk down it has left it."""
        return self.id.startswith(_DIVIDES_BELOW_IDS)

    @property
    def tube(self) -> bool:
        """A vessel, airway or gut tube: its cross-section stays small along its whole length, where an organ's
        shrinks only towards its tip."""
        return self.id.startswith(_TUBE_IDS)

    @property
    def one_tissue(self) -> bool:
        """An organ of one tissue: a piece of other tissue its walk gains belongs to a neighbour. Not a bone (cortex
        and marrow), not gut (gas, fluid and food), not a vessel or airway (the contrast thins along it, and where it
        branches a new piece carries its wall's partial volume: the ascending aorta rising out of the arch)."""
        return not (self.bone or self.tube or self.id.startswith(_GUT_IDS))

    @property
    def raw_names(self) -> tuple[str, ...]:
        """Every raw label name that denotes this concept: id, TotalSegmentator names, data-set aliases."""
        return tuple(dict.fromkeys((self.id, *self.totalsegmentator_names, *self.aliases)))


def _code(triplet) -> Code | None:
    if not triplet:
        return None
    scheme, value, meaning = triplet
    return Code(value, scheme, meaning)


def _concept(entry: dict) -> Concept:
    modality = entry.get("modality_ok")
    return Concept(
        id=entry["id"], name=entry["name"], synonyms=tuple(entry["synonyms"]), laterality=entry["laterality"],
        category=_code(entry["category"]), type=_code(entry["type"]), modifier=_code(entry["modifier"]),
        anatomic_region=_code(entry.get("anatomic_region")),
        anatomic_region_modifier=_code(entry.get("anatomic_region_modifier")),
        color=tuple(int(c) for c in entry["color"]), region=entry.get("region"),
        modality_ok=tuple(modality) if modality else None,
        totalsegmentator_names=tuple(entry.get("totalsegmentator_names", ())), aliases=tuple(entry.get("aliases", ())),
        code_source=entry.get("code_source", ""), color_source=entry.get("color_source", ""), note=entry.get("note"))


@lru_cache(maxsize=1)
def _data() -> dict:
    with open(DATA_FILE, encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=1)
def _catalogue() -> tuple[dict[str, Concept], dict[str, Concept], dict[str, Concept]]:
    by_id: dict[str, Concept] = {}
    by_raw_name: dict[str, Concept] = {}
    for entry in _data()["concepts"]:
        concept = _concept(entry)
        if concept.id in by_id:
            raise ValueError(f"structures.json: duplicate concept id {concept.id!r}")
        by_id[concept.id] = concept
        for raw in concept.raw_names:
            if by_raw_name.get(raw, concept) is not concept:
                raise ValueError(f"structures.json: label name {raw!r} names {by_raw_name[raw].id} and {concept.id}")
            by_raw_name[raw] = concept
    by_lowercase_name = {raw.lower(): concept for raw, concept in by_raw_name.items()}
    return by_id, by_raw_name, by_lowercase_name


def text_rules() -> dict:
    """The word rules the matcher applies to free text (stored beside the concepts so both stay in step)."""
    return _data()["text_rules"]


def sources() -> dict[str, str]:
    """Where codes and colours come from, keyed by the `code_source` / `color_source` values."""
    return dict(_data()["sources"])


def all_concepts() -> tuple[Concept, ...]:
    return tuple(_catalogue()[0].values())


def get_concept(concept_id: str) -> Concept:
    """The concept with this id; KeyError for an unknown id (ids are fixed strings, a typo is a bug)."""
    try:
        return _catalogue()[0][concept_id]
    except KeyError:
        raise KeyError(f"no structure concept with id {concept_id!r}") from None


def concept_by_label_name(raw_name: str) -> Concept | None:
    """Concept whose label name (TotalSegmentator v1/v2/total_mr, data-set aliases) is exactly ``raw_name``.

    Exact spelling first, then case-insensitive; None otherwise (``label_names.concept_for_label_name`` then
    tries the free-text matcher).
    """
    if not raw_name or not raw_name.strip():
        return None
    _, by_raw, by_lowercase = _catalogue()
    name = raw_name.strip()
    return by_raw.get(name) or by_lowercase.get(name.lower())


def generic_terminology(free_text: str) -> Terminology:
    """Verified generic codes for text that matched no concept; the free text stays the segment name.

    A cyst, an edema or another lesion word gets a Morphologically Altered Structure code, anything else
    Slicer's default Tissue/Tissue, so DICOM-SEG and Slicer stay valid without inventing codes.
    """
    words = set(re.findall(r"[a-z]+", (free_text or "").lower()))
    if words & _CYST_WORDS:
        return Terminology(MORPHOLOGICALLY_ALTERED_STRUCTURE, CYST)
    if words & _EDEMA_WORDS:
        return Terminology(MORPHOLOGICALLY_ALTERED_STRUCTURE, EDEMA)
    rules = text_rules()
    spelled = {rules["british_to_us"].get(w, w) for w in words}
    finding_words = set(rules["finding_words"]["words"])
    if spelled & finding_words or {w.rstrip("s") for w in spelled} & finding_words:
        return Terminology(MORPHOLOGICALLY_ALTERED_STRUCTURE, MASS)
    return Terminology(TISSUE, TISSUE)


def color_255_for_text(text: str) -> tuple[int, int, int]:
    """Deterministic, saturated colour for unmatched text: the same words always get the same colour."""
    key = " ".join((text or "").lower().split()) or "segment"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    saturation = 0.55 + 0.35 * digest[2] / 255.0  # never below 0.55: not grey
    value = 0.75 + 0.20 * digest[3] / 255.0
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return (round(r * 255), round(g * 255), round(b * 255))


def color_for_text(text: str) -> tuple[float, float, float]:
    """`color_255_for_text` in 0..1, the convention of SegmentOutput.color."""
    r, g, b = color_255_for_text(text)
    return (r / 255.0, g / 255.0, b / 255.0)
