"""The structure catalogue: complete for every label name we meet, valid codes and colours, no ambiguity."""
import json
import re

import pytest

from RefSAM3DLib.vocab.codes import Code, Terminology
from RefSAM3DLib.vocab.concepts import (
    Concept,
    all_concepts,
    color_255_for_text,
    color_for_text,
    generic_terminology,
    get_concept,
    sources,
)
from RefSAM3DLib.vocab.label_names import concept_for_label_name
from RefSAM3DLib.vocab.matcher import parse, phrases_of, side_fits

CATEGORIES = {
    "123037004": "Anatomical Structure",
    "49755003": "Morphologically Altered Structure",
    "85756007": "Tissue",
}
SIDE_MODIFIERS = {"left": Code("7771000", "SCT", "Left"), "right": Code("24028007", "SCT", "Right")}
REGIONS = {None, "abdomen", "chest", "pelvis", "head", "neck", "spine", "limb"}
# Label names in the shared data that are not TotalSegmentator class names (README of the shared data).
SHARED_EXTRA_NAMES = ["aorta_true_lumen", "aorta_false_lumen", "lung tumor (ROI)", "brain tumor ROI",
                      "breast lesion ROI", "peritumoral edema", "gray_matter", "white_matter"]


def _valid_code(code: Code) -> bool:
    return code.scheme == "SCT" and code.value.isdigit() and bool(code.meaning.strip())


def test_catalogue_size_and_unique_ids():
    concepts = all_concepts()
    ids = [c.id for c in concepts]
    assert len(ids) == len(set(ids))
    assert len(concepts) >= 170
    assert all(re.fullmatch(r"[a-z0-9]+(_[A-Za-z0-9]+)*", i) for i in ids)
    assert get_concept("kidney_left").name == "left kidney"
    with pytest.raises(KeyError):
        get_concept("no_such_structure")


@pytest.mark.parametrize("concept", all_concepts(), ids=lambda c: c.id)
def test_every_concept_has_valid_codes_and_colour(concept: Concept):
    assert CATEGORIES.get(concept.category.value) == concept.category.meaning
    assert _valid_code(concept.category) and _valid_code(concept.type)
    for code in (concept.modifier, concept.anatomic_region, concept.anatomic_region_modifier):
        assert code is None or _valid_code(code)
    assert concept.laterality in (None, "left", "right")
    for modifier in (concept.modifier, concept.anatomic_region_modifier):
        if modifier is not None:  # a laterality code always agrees with the concept's side
            assert modifier == SIDE_MODIFIERS[concept.laterality]
    if concept.category.value == "49755003":  # findings are placed by an anatomic region or are side-less
        assert concept.anatomic_region is not None or concept.laterality is None
    assert len(concept.color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in concept.color)
    assert all(0.0 <= c <= 1.0 for c in concept.color_float)
    assert concept.code_source in sources() and concept.color_source in sources()
    assert concept.region in REGIONS
    assert concept.terminology == Terminology(concept.category, concept.type, concept.modifier,
                                              concept.anatomic_region, concept.anatomic_region_modifier)
    assert concept.display_name == concept.name and concept.name.lower() in concept.synonyms


def test_synonyms_are_lowercase_and_belong_to_one_concept():
    owner: dict[str, str] = {}
    for concept in all_concepts():
        for synonym in concept.synonyms:
            assert synonym == synonym.lower().strip()
            assert owner.setdefault(synonym, concept.id) == concept.id, f"{synonym!r}: {owner[synonym]}, {concept.id}"


def test_normalized_phrases_name_one_concept_per_side():
    """After normalisation ("lt kidney" == "left kidney") no phrase may point at two concepts of the same side."""
    owner: dict[tuple, str] = {}
    for concept in all_concepts():
        for phrase in phrases_of(concept):
            parsed = parse(phrase)
            assert parsed.tokens, f"{concept.id}: {phrase!r} has no content words"
            assert side_fits(parsed.side, concept), f"{concept.id}: {phrase!r} names another side"
            key = (frozenset(parsed.tokens), concept.laterality)
            assert owner.setdefault(key, concept.id) == concept.id, f"{phrase!r}: {owner[key]} and {concept.id}"


def test_lateral_pairs_have_a_sideless_concept():
    """Text without a side ("kidney", "femur", "rib 7") must have a concept that picks no side."""
    by_type: dict[tuple, set] = {}
    for concept in all_concepts():
        by_type.setdefault((concept.type, concept.anatomic_region), set()).add(concept.laterality)
    for concept in all_concepts():
        if concept.modifier is not None or concept.anatomic_region_modifier is not None:
            assert None in by_type[(concept.type, concept.anatomic_region)], concept.id


def _label_names(folder):
    names = {}
    for path in sorted(folder.rglob("labels*.json")):
        names[path.relative_to(folder).as_posix()] = list(json.loads(path.read_text()).values())
    return names


def test_every_shared_label_name_resolves(shared_data):
    files = _label_names(shared_data)
    counts = {path.rsplit("/", 1)[-1]: len(names) for path, names in files.items()}
    assert counts.get("labels_total_v2.json") == 117 and counts.get("labels_total_mr.json") == 50
    assert counts.get("labels_total_v1.json") == 104
    for path, names in files.items():
        for name in names:
            concept = concept_for_label_name(name)
            assert concept is not None, f"{path}: {name!r}"
            if path.startswith("totalsegmentator/") and "total" in path:
                assert concept.id == name  # TotalSegmentator names are the ids
            for side in ("left", "right"):
                if re.search(rf"(^|_){side}(_|$)", name):
                    assert concept.laterality == side, name
    for name in SHARED_EXTRA_NAMES:
        assert concept_for_label_name(name) is not None, name


@pytest.mark.parametrize("raw, expected", [
    ("kidney_left", "kidney_left"), ("lung_upper_lobe_left", "lung_upper_lobe_left"),
    ("vertebrae_L1", "vertebrae_L1"), ("peritumoral edema", "peritumoral_edema"), ("KIDNEY_LEFT", "kidney_left"),
    ("lung tumor (ROI)", "lung_tumor"), ("brain tumor ROI", "brain_tumor"), ("liver_tumor", "liver_tumor"),
    ("rib_right_12", "rib_right_12"), ("portal_vein_and_splenic_vein", "portal_vein_and_splenic_vein"),
    ("Left-Kidney", "kidney_left"), ("postcava", "inferior_vena_cava"),
])
def test_concept_for_label_name(raw, expected):
    assert concept_for_label_name(raw).id == expected


@pytest.mark.parametrize("raw", ["", "   ", "background", "label_7", "asdfgh"])
def test_unknown_label_names_give_none(raw):
    assert concept_for_label_name(raw) is None


@pytest.mark.parametrize("text, type_value, category_value", [
    ("banana", "85756007", "85756007"), ("my structure", "85756007", "85756007"),
    ("liver cyst", "367643001", "49755003"), ("spinal oedema", "79654002", "49755003"),
    ("adrenal lesion", "4147007", "49755003"), ("bone tumours", "4147007", "49755003"),
])
def test_generic_terminology_for_unmatched_text(text, type_value, category_value):
    terminology = generic_terminology(text)
    assert terminology.type.value == type_value and terminology.category.value == category_value
    assert terminology.modifier is None


def test_colour_for_unmatched_text_is_deterministic_saturated_and_distinct():
    words = [f"structure {i}" for i in range(40)] + ["banana", "my lesion", "thing"]
    colours = [color_255_for_text(w) for w in words]
    assert colours == [color_255_for_text(w) for w in words]
    assert color_255_for_text("Banana ") == color_255_for_text("banana")
    for rgb in colours:
        assert all(0 <= c <= 255 for c in rgb) and max(rgb) - min(rgb) >= 50  # saturated, never grey
    assert len(set(colours)) == len(colours)
    assert color_for_text("banana") == tuple(c / 255 for c in color_255_for_text("banana"))


def test_bones_are_told_from_organs_and_vessels():
    """The locate stage keeps a bone's walk within its region (a joint joins it to the next bone)."""
    assert all(get_concept(i).bone for i in ("femur_right", "vertebrae_L3", "rib_left_4", "hip_left", "sacrum"))
    assert not any(get_concept(i).bone for i in ("spleen", "aorta", "esophagus", "trachea", "iliac_artery_left"))


def test_tubes_that_end_below_by_dividing_are_known():
    """A walk down the aorta or the trachea stops where the tube divides; other tubes and organs walk on."""
    assert all(get_concept(i).divides_below for i in ("aorta", "trachea", "iliac_artery_left"))
    assert not any(get_concept(i).divides_below for i in ("esophagus", "inferior_vena_cava", "spleen", "femur_right"))


def test_organs_of_one_tissue_are_told_from_gut_vessels_and_bones():
    """A text walk cuts a piece of other tissue it gains only from an organ of one tissue: the stomach's contents,
    a vessel's thinning contrast and a bone's cortex and marrow differ within the structure itself."""
    assert all(get_concept(i).one_tissue for i in ("liver", "spleen", "kidney_left", "pancreas", "lung_upper_lobe_left"))
    assert not any(get_concept(i).one_tissue for i in ("stomach", "colon", "esophagus", "aorta", "trachea",
                                                        "vertebrae_L3", "femur_right"))
