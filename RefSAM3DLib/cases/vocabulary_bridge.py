"""Label names -> text prompts for training, through the vocabulary.

A raw label name ("kidney_left", "lung tumor") becomes its concept's phrasings ("left kidney",
"perform left kidney segmentation", "CT of the left kidney", ...), so training sees the varied ways
people write. Names the vocabulary does not know are used as written (underscores as spaces).
"""
from __future__ import annotations

from functools import cache

import numpy as np

from ..vocab.concepts import Concept, all_concepts
from ..vocab.label_names import concept_for_label_name

BODY_REGIONS = {"abdomen", "pelvis", "chest"}
MAX_PHRASES = 24


@cache
def concept_of(raw_name: str) -> Concept | None:
    return concept_for_label_name(raw_name)


class StructureText:
    def __init__(self, max_phrases: int = MAX_PHRASES) -> None:
        self.max_phrases = max_phrases
        self._cache: dict[tuple[str, str], list[str]] = {}

    def phrases(self, raw_name: str, modality: str) -> list[str]:
        key = (raw_name, modality)
        if key not in self._cache:
            from ..vocab.templates import phrasings

            concept = concept_of(raw_name)
            if concept is None:
                name = raw_name.replace("_", " ").strip()
                found = [name, f"the {name}", f"{name} segmentation", f"perform {name} segmentation"]
            else:
                found = phrasings(concept, modality=modality)
            self._cache[key] = list(dict.fromkeys(found))[: self.max_phrases]
        return self._cache[key]

    def phrase(self, raw_name: str, modality: str, rng: np.random.Generator) -> str:
        options = self.phrases(raw_name, modality)
        # the plain canonical name is what most users type: give it a fixed share
        return options[0] if rng.random() < 0.5 else options[int(rng.integers(len(options)))]


def _parent_ids(concept_id: str) -> list[str]:
    """Side-less and group concepts a structure belongs to: kidney_left -> kidney; a lung lobe -> its lung and
    "lung"; rib_left_7 -> rib_7 and ribs; vertebrae_L1 -> lumbar vertebrae and vertebrae."""
    parents = []
    for side in ("_left", "_right"):
        if concept_id.endswith(side):
            parents.append(concept_id[: -len(side)])
    if concept_id.startswith("lung_") and "lobe" in concept_id:
        side = "left" if concept_id.endswith("_left") else "right"
        parents += [f"lung_{side}", "lung"]
    if concept_id in ("lung_left", "lung_right"):
        parents.append("lung")
    if concept_id.startswith("rib_"):
        parts = concept_id.split("_")
        if len(parts) == 3:
            parents.append(f"rib_{parts[2]}")
        parents.append("ribs")
    if concept_id.startswith("vertebrae_") and len(concept_id) <= 13:
        region = {"C": "vertebrae_cervical", "T": "vertebrae_thoracic", "L": "vertebrae_lumbar"}.get(concept_id[10])
        parents += ([region] if region else []) + ["vertebrae"]
    known = {c.id for c in all_concepts()}
    return [p for p in dict.fromkeys(parents) if p in known and p != concept_id]


def structures_of(names: dict[int, str], exhaustive: bool) -> dict[str, tuple[int, ...]]:
    """Every structure a case can be prompted for: each label, plus group concepts made of several labels.

    Groups ("kidney" = left + right kidney, "lung" = all lobes, "ribs", "vertebrae") are built only from
    exhaustive label maps, where a group's missing member is truly absent rather than unlabelled.
    """
    structures = {name: (value,) for value, name in names.items()}
    if not exhaustive:
        return structures
    groups: dict[str, list[int]] = {}
    for value, name in names.items():
        concept = concept_of(name)
        if concept is None:
            continue
        for parent in _parent_ids(concept.id):
            groups.setdefault(parent, []).append(value)
    existing = {concept_of(n).id for n in names.values() if concept_of(n) is not None}
    for parent, values in groups.items():
        if parent not in existing:
            structures[parent] = tuple(sorted(values))
    return structures


def absent_groups(case, structures: dict[str, tuple[int, ...]]) -> list[str]:
    """Group concepts none of whose members occur in an exhaustively labelled case (e.g. "cervical vertebrae")."""
    if not case.exhaustive:
        return []
    groups = []
    for name in case.absent_names:
        concept = concept_of(name)
        if concept is not None:
            groups += [p for p in _parent_ids(concept.id) if p not in structures]
    return list(dict.fromkeys(groups))


def allowed(name: str, wanted: list[str]) -> bool:
    """Is a structure (raw label name or concept id) in a list of wanted names / concept ids?"""
    concept = concept_of(name)
    keys = {name} | ({concept.id, concept.name} if concept is not None else set())
    return bool(keys & set(wanted))


def same_concept(a: str, b: str) -> bool:
    ca, cb = concept_of(a), concept_of(b)
    return a == b or (ca is not None and cb is not None and ca.id == cb.id)


def negatives_pool(case_names: list[str], absent_names: list[str], regions: list[str]) -> list[str]:
    """Names that may serve as 'absent' prompts for crops of a case (filtered per crop later).

    Beyond the case's own structures and its exhaustive map's absent names, structures of body parts
    the scan cannot contain: head structures for a trunk scan, trunk organs for a head scan.
    Spine, limb and neck structures are never assumed absent (scans of any region may show them).
    """
    pool = list(dict.fromkeys(list(case_names) + list(absent_names)))
    covered = set(regions)
    if covered:
        for concept in all_concepts():
            if concept.region is None or concept.region in ("spine", "limb", "neck"):
                continue
            head_vs_body = (concept.region == "head" and "head" not in covered) or \
                           (concept.region in BODY_REGIONS and not covered & BODY_REGIONS)
            if head_vs_body:
                pool.append(concept.id)
    present_concepts = {concept_of(n).id for n in case_names if concept_of(n) is not None}
    return [n for n in dict.fromkeys(pool) if not (concept_of(n) and concept_of(n).id in present_concepts
                                                   and n not in case_names)]
