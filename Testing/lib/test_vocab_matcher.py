"""Free text -> concept: task phrasing, spelling, typos, tumours, and above all: laterality never flips."""
import re

import pytest

from RefSAM3DLib.vocab.concepts import all_concepts, get_concept
from RefSAM3DLib.vocab.matcher import MATCH_THRESHOLD, resolve

OPPOSITE = {"left": "right", "right": "left"}
SHORT = {"left": ("lt", "l", "lft"), "right": ("rt", "r", "rgt")}


def _id(text):
    match = resolve(text)
    return match.concept.id if match.concept else None


@pytest.mark.parametrize("text, expected", [
    ("left kidney", "kidney_left"), ("Perform liver segmentation", "liver"), ("the spleen", "spleen"),
    ("lt kidney", "kidney_left"), ("l kidney", "kidney_left"), ("L. kidney", "kidney_left"),
    ("kidney, left", "kidney_left"), ("rt kidney", "kidney_right"), ("aorta", "aorta"),
    ("segment the liver", "liver"), ("Segment liver", "liver"), ("segmentation of the pancreas", "pancreas"),
    ("CT of the liver", "liver"), ("MRI image of the left kidney", "kidney_left"),
    ("show me the spleen", "spleen"), ("Where is the gallbladder?", "gallbladder"),
    ("gallbladder segmentation", "gallbladder"), ("the liver please", "liver"),
    ("delineate the urinary bladder", "urinary_bladder"), ("bladder", "urinary_bladder"),
    ("CT images, liver tumor segmentation", "liver_tumor"), ("T1-weighted MRI of the brain", "brain"),
    ("segment the L1 vertebra", "vertebrae_L1"), ("vertebra L-1", "vertebrae_L1"), ("T12", "vertebrae_T12"),
    ("left 7th rib", "rib_left_7"), ("seventh rib, right", "rib_right_7"), ("rib 7", "rib_7"),
    ("ivc", "inferior_vena_cava"), ("SMA", "superior_mesenteric_artery"), ("svc", "superior_vena_cava"),
    ("left upper lobe", "lung_upper_lobe_left"), ("RLL", "lung_lower_lobe_right"),
    ("prostate", "prostate"), ("spine", "vertebrae"), ("ribs", "ribs"), ("brain", "brain"),
    ("heart", "heart"), ("pulmonary artery", "pulmonary_artery"), ("celiac trunk", "celiac_trunk"),
    ("left common carotid artery", "common_carotid_artery_left"), ("brachiocephalic trunk", "brachiocephalic_trunk"),
    ("gray matter", "gray_matter"), ("white matter", "white_matter"), ("liver of this patient", "liver"),
])
def test_task_phrasings_and_abbreviations(text, expected):
    assert _id(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("oesophagus", "esophagus"), ("grey matter", "gray_matter"), ("peritumoural oedema", "peritumoral_edema"),
    ("coeliac trunk", "celiac_trunk"), ("tumour of the liver", "liver_tumor"), ("intervertebral disks", "intervertebral_discs"),
])
def test_british_and_us_spelling(text, expected):
    assert _id(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("kidneys", "kidney"), ("both kidneys", "kidney"), ("lungs", "lung"), ("left and right lung", "lung"),
    ("bilateral femurs", "femur"), ("the adrenal glands", "adrenal_gland"), ("vertebrae", "vertebrae"),
])
def test_plurals_and_both_sides_give_the_sideless_concept(text, expected):
    match = resolve(text)
    assert match.concept.id == expected and match.concept.laterality is None


def test_text_without_side_never_picks_a_side():
    for concept in all_concepts():
        if concept.laterality is None:
            match = resolve(concept.name)
            assert match.concept is concept, (concept.name, match.concept)
    assert resolve("atrium").concept is None  # only sided concepts share these words: ambiguous, no coin toss


@pytest.mark.parametrize("text, expected", [
    ("livr", "liver"), ("spleeen", "spleen"), ("kidny", "kidney"), ("pancrease", "pancreas"),
    ("gallbladr", "gallbladder"), ("prostrate", "prostate"), ("left kidny", "kidney_left"),
    ("esophagos", "esophagus"), ("gall bladder", "gallbladder"), ("lvier tumor", "liver_tumor"),
])
def test_typos(text, expected):
    match = resolve(text)
    assert match.concept.id == expected and MATCH_THRESHOLD <= match.score <= 1.0


@pytest.mark.parametrize("text, expected", [
    ("liver tumor", "liver_tumor"), ("tumour of the liver", "liver_tumor"), ("liver lesion", "liver_tumor"),
    ("hepatic tumor", "liver_tumor"), ("HCC", "liver_tumor"), ("liver metastases", "liver_tumor"),
    ("lung tumor", "lung_tumor"), ("lung nodule", "lung_tumor"), ("lung cancer", "lung_tumor"),
    ("tumor in the right lung", "lung_tumor"), ("pulmonary nodule", "lung_tumor"),
    ("kidney tumor", "kidney_tumor"), ("renal mass", "kidney_tumor"), ("kidney cyst", "kidney_cyst"),
    ("left renal cyst", "kidney_cyst_left"), ("pancreatic cancer", "pancreas_tumor"),
    ("colon cancer", "colon_cancer"), ("colorectal tumour", "colon_cancer"), ("brain tumor", "brain_tumor"),
    ("glioblastoma", "brain_tumor"), ("edema", "peritumoral_edema"), ("peritumoral edema", "peritumoral_edema"),
    ("breast lesion", "breast_lesion"),
])
def test_tumours(text, expected):
    assert _id(text) == expected


def test_tumour_side_stays_in_the_name():
    match = resolve("tumor in the right lung")
    assert match.concept.id == "lung_tumor" and match.side == "right"
    assert match.display_name == "right lung tumor"
    assert resolve("left kidney tumour").display_name == "left kidney tumor"
    assert resolve("left kidney").display_name == "left kidney"


@pytest.mark.parametrize("text", [
    "banana", "asdfgh", "", "   ", "segment the", "left", "liver cyst", "tumor", "rib 13", "l6 vertebra",
    "left middle lobe", "right lul", "liver and spleen",
])
def test_unmatched_text(text):
    match = resolve(text)
    assert match.concept is None and match.score < MATCH_THRESHOLD and not match.matched
    assert match.terminology.type.value in ("85756007", "4147007", "367643001")  # Tissue / Mass / Cyst
    assert all(0.0 <= c <= 1.0 for c in match.color)


def test_unmatched_match_keeps_the_users_words():
    match = resolve("Please segment the Hepatic Cyst.")
    assert match.display_name == "Hepatic Cyst"
    assert match.terminology.type.value == "367643001"
    assert resolve("hepatic cyst").color == match.color  # same words, same colour


def test_matched_match_carries_concept_codes_and_colour():
    match = resolve("lt kidney")
    concept = get_concept("kidney_left")
    assert match.terminology == concept.terminology and match.color == concept.color_float
    assert match.color_255 == concept.color and match.normalized == "left kidney" and match.method == "exact"
    assert resolve("liver tumor").anatomic_region.value == "10200004"


def _base_words(concept) -> str:
    """The concept's name without its side word: "left kidney" -> "kidney", "right middle lobe" -> "middle lobe"."""
    return re.sub(r"\s+", " ", re.sub(r"\b(left|right)\b", " ", concept.name)).strip()


def _side_phrasings(side: str, base: str) -> list[str]:
    texts = [f"{side} {base}", f"{base} {side}", f"{base}, {side}", f"{side.upper()} {base.upper()}",
             f"{side}-sided {base}", f"segment the {side} {base}", f"CT of the {side} {base}",
             f"perform {side} {base} segmentation please", f"where is the {base} on the {side}?"]
    for short in SHORT[side]:
        texts += [f"{short} {base}", f"{short}. {base}", f"{base} {short}"]
    words = base.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    if len(words[longest]) >= 5:  # a typo in the structure word must not change the side either
        typo = words[:longest] + [words[longest][:2] + words[longest][3:]] + words[longest + 1:]
        texts.append(f"{side} {' '.join(typo)}")
    return texts


def test_laterality_never_flips():
    """Every sided concept, asked for with many spellings of its side (and of the other side)."""
    checked = 0
    for concept in all_concepts():
        if concept.laterality is None:
            continue
        base = _base_words(concept)
        for side in ("left", "right"):
            for text in _side_phrasings(side, base):
                match = resolve(text)
                checked += 1
                if match.concept is not None:
                    assert match.concept.laterality != OPPOSITE[side], (text, match.concept.id)
                if side == concept.laterality:  # its own side always finds something, never nothing
                    assert match.concept is not None, text
        for text in _side_phrasings(concept.laterality, base)[:9]:
            assert resolve(text).concept is concept, text
    assert checked > 2000
