"""Structure vocabulary: canonical names, synonyms, SNOMED CT codes, colours; free text -> concept.

- `concepts`: the catalogue (structures.json): `Concept`, `all_concepts`, `get_concept`, `generic_terminology`
  and `color_for_text` for text that matches nothing.
- `label_names`: `concept_for_label_name` (TotalSegmentator v1/v2/total_mr and data-set label names).
- `matcher`: `resolve(text) -> Match` ("Perform liver segmentation", "lt kidney", "livr"); never flips sides.
- `templates`: `phrasings(concept, modality, rng, k)`, prompt variety for training.
- `slicer_terminology`: the TerminologyEntry string Slicer stores per segment, and its parser.
"""
from .codes import Code, Terminology
from .concepts import (
    Concept,
    all_concepts,
    color_255_for_text,
    color_for_text,
    generic_terminology,
    get_concept,
)
from .label_names import concept_for_label_name
from .matcher import MATCH_THRESHOLD, Match, parse, resolve
from .slicer_terminology import (
    SlicerTerminologyEntry,
    concept_terminology_string,
    parse_slicer_terminology_entry,
    parse_slicer_terminology_string,
    slicer_terminology_string,
)
from .templates import TEMPLATES, phrasings, sample_phrasing

__all__ = [
    "MATCH_THRESHOLD",
    "TEMPLATES",
    "Code",
    "Concept",
    "Match",
    "SlicerTerminologyEntry",
    "Terminology",
    "all_concepts",
    "color_255_for_text",
    "color_for_text",
    "concept_for_label_name",
    "concept_terminology_string",
    "generic_terminology",
    "get_concept",
    "parse",
    "parse_slicer_terminology_entry",
    "parse_slicer_terminology_string",
    "phrasings",
    "resolve",
    "sample_phrasing",
    "slicer_terminology_string",
]
