"""Slicer's TerminologyEntry string: exact format, round trip, and agreement with Slicer's own serializer."""
import pytest

from RefSAM3DLib.vocab.codes import Code, Terminology
from RefSAM3DLib.vocab.concepts import all_concepts, get_concept
from RefSAM3DLib.vocab.slicer_terminology import (
    ANATOMIC_CONTEXT,
    SEGMENTATION_CONTEXT,
    concept_terminology_string,
    parse_slicer_terminology_entry,
    parse_slicer_terminology_string,
    slicer_terminology_string,
)

LIVER = ("Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~SCT^10200004^Liver"
         "~^^~Anatomic codes - DICOM master list~^^~^^")
LEFT_KIDNEY = ("Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure"
               "~SCT^64033007^Kidney~SCT^7771000^Left~Anatomic codes - DICOM master list~^^~^^")


def test_exact_strings_for_liver_and_left_kidney():
    assert slicer_terminology_string(get_concept("liver").terminology) == LIVER
    assert slicer_terminology_string(get_concept("kidney_left").terminology) == LEFT_KIDNEY
    assert concept_terminology_string(get_concept("kidney_left")) == LEFT_KIDNEY


def test_anatomic_region_is_written_for_findings():
    text = concept_terminology_string(get_concept("liver_tumor"))
    assert text.split("~")[1:] == ["SCT^49755003^Morphologically Altered Structure", "SCT^108369006^Neoplasm", "^^",
                                   ANATOMIC_CONTEXT, "SCT^10200004^Liver", "^^"]
    cyst = concept_terminology_string(get_concept("kidney_cyst_left")).split("~")
    assert cyst[5:] == ["SCT^64033007^Kidney", "SCT^7771000^Left"]


@pytest.mark.parametrize("concept", all_concepts(), ids=lambda c: c.id)
def test_round_trip_for_every_concept(concept):
    text = concept_terminology_string(concept)
    assert text.count("~") == 6
    entry = parse_slicer_terminology_entry(text)
    assert entry.terminology == concept.terminology
    assert entry.anatomic_region == concept.anatomic_region
    assert entry.anatomic_region_modifier == concept.anatomic_region_modifier
    assert (entry.context_name, entry.anatomic_context_name) == (SEGMENTATION_CONTEXT, ANATOMIC_CONTEXT)
    assert parse_slicer_terminology_string(text) == concept.terminology


def test_parse_accepts_short_strings_and_rejects_garbage():
    short = "Segmentation category and type - 3D Slicer General Anatomy list~SCT^85756007^Tissue~SCT^85756007^Tissue"
    tissue = Code("85756007", "SCT", "Tissue")
    assert parse_slicer_terminology_string(short) == Terminology(tissue, tissue, None)
    for bad in ("", "liver", "ctx~SCT^1^a", "ctx~^^~^^", "ctx~SCT^1~SCT^2^b"):
        with pytest.raises(ValueError):
            parse_slicer_terminology_string(bad)


def test_matches_slicers_own_serializer():
    logic_module = pytest.importorskip("slicer_core.vtkSlicerTerminologiesModuleLogic")
    serialize = logic_module.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry

    def parts(code):
        return (code.value, code.scheme, code.meaning) if code else ("", "", "")

    for concept_id in ("liver", "kidney_left", "liver_tumor", "kidney_cyst_left", "vertebrae_L1"):
        concept = get_concept(concept_id)
        expected = serialize(SEGMENTATION_CONTEXT, *parts(concept.category), *parts(concept.type),
                             *parts(concept.modifier), ANATOMIC_CONTEXT, *parts(concept.anatomic_region),
                             *parts(concept.anatomic_region_modifier))
        assert concept_terminology_string(concept) == expected
