"""The serialized terminology entry Slicer keeps in a segment's "TerminologyEntry" tag, both ways.

Format (as vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry writes it; checked against slicer-core):
  contextName~catScheme^catValue^catMeaning~typeScheme^typeValue^typeMeaning~modScheme^modValue^modMeaning
  ~anatomicContextName~regionScheme^regionValue^regionMeaning~regionModScheme^regionModValue^regionModMeaning
An absent code is written "^^". Writing the exact string lets Slicer show the coded name, colour and
laterality of a segment that RefSAM3D made, and lets a DICOM-SEG export round-trip through Slicer.
"""
from __future__ import annotations

from dataclasses import dataclass

from .codes import Code, Terminology
from .concepts import Concept

SEGMENTATION_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"


@dataclass(frozen=True)
class SlicerTerminologyEntry:
    """Everything a serialized entry holds (the anatomic region sits beside the category/type/modifier)."""

    terminology: Terminology
    anatomic_region: Code | None = None
    anatomic_region_modifier: Code | None = None
    context_name: str = SEGMENTATION_CONTEXT
    anatomic_context_name: str = ANATOMIC_CONTEXT


def _code_text(code: Code | None) -> str:
    if code is None:
        return "^^"
    return f"{code.scheme}^{code.value}^{code.meaning}"


def _parse_code(text: str) -> Code | None:
    parts = text.split("^")
    if len(parts) != 3:
        raise ValueError(f"terminology code {text!r} is not 'scheme^value^meaning'")
    scheme, value, meaning = parts
    if not (scheme or value or meaning):
        return None
    return Code(value, scheme, meaning)


def slicer_terminology_string(terminology: Terminology, anatomic_region: Code | None = None,
                              anatomic_region_modifier: Code | None = None, *,
                              context_name: str = SEGMENTATION_CONTEXT,
                              anatomic_context_name: str = ANATOMIC_CONTEXT) -> str:
    """The TerminologyEntry string for these codes, e.g. for the liver:
    'Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^
    ~Anatomic codes - DICOM master list~^^~^^' (one line).
    """
    region = anatomic_region or terminology.anatomic_region
    region_modifier = anatomic_region_modifier or terminology.anatomic_region_modifier
    return "~".join([
        context_name, _code_text(terminology.category), _code_text(terminology.type),
        _code_text(terminology.modifier), anatomic_context_name, _code_text(region),
        _code_text(region_modifier)])


def concept_terminology_string(concept: Concept) -> str:
    """The TerminologyEntry string of a concept, anatomic region included (e.g. Neoplasm in Liver)."""
    return slicer_terminology_string(concept.terminology)


def parse_slicer_terminology_entry(text: str) -> SlicerTerminologyEntry:
    """Read a TerminologyEntry string; older strings without the anatomic part are accepted."""
    fields = (text or "").strip().split("~")
    if len(fields) < 3:
        raise ValueError(f"not a Slicer terminology entry (needs context~category~type...): {text!r}")
    fields += [""] * (7 - len(fields))
    category, type_ = _parse_code(fields[1]), _parse_code(fields[2])
    if category is None or type_ is None:
        raise ValueError(f"terminology entry without category or type: {text!r}")
    modifier = _parse_code(fields[3]) if fields[3] else None
    region = _parse_code(fields[5]) if fields[5] else None
    region_modifier = _parse_code(fields[6]) if fields[6] else None
    return SlicerTerminologyEntry(Terminology(category, type_, modifier, region, region_modifier), region,
                                  region_modifier, fields[0], fields[4])


def parse_slicer_terminology_string(text: str) -> Terminology:
    """The category/type/modifier of a TerminologyEntry string (see parse_slicer_terminology_entry for the rest)."""
    return parse_slicer_terminology_entry(text).terminology
