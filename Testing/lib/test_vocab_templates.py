"""Training phrasings: varied, reproducible, and every one resolves back to its own concept."""
import random

import numpy as np

from RefSAM3DLib.vocab.concepts import all_concepts, get_concept
from RefSAM3DLib.vocab.matcher import resolve
from RefSAM3DLib.vocab.templates import TEMPLATES, phrasings, sample_phrasing


def test_phrasings_cover_the_paper_and_clinical_styles():
    texts = phrasings(get_concept("liver_tumor"))
    assert texts[0] == "liver tumor"
    assert "CT images, liver tumor segmentation" in texts
    liver = phrasings(get_concept("liver"), modality="MRI")
    for expected in ("liver", "the liver", "perform liver segmentation", "segment the liver", "MRI of the liver",
                     "liver segmentation", "where is the liver?", "delineate the liver", "MRI images, liver segmentation"):
        assert expected in liver
    kidney = phrasings(get_concept("kidney_left"))
    assert "segment the lt kidney" in kidney and "l kidney" in kidney
    assert len(texts) == len(set(texts)) == len(get_concept("liver_tumor").synonyms) * len(TEMPLATES)


def test_phrasings_are_deterministic_and_sampled_reproducibly():
    concept = get_concept("spleen")
    assert phrasings(concept) == phrasings(concept)
    assert phrasings(concept, k=3) == phrasings(concept)[:3]
    first = phrasings(concept, rng=random.Random(7), k=5)
    assert first == phrasings(concept, rng=random.Random(7), k=5) and len(first) == 5
    assert sorted(phrasings(concept, rng=random.Random(1))) == sorted(phrasings(concept))
    numpy_sample = phrasings(concept, rng=np.random.default_rng(0), k=4)
    assert numpy_sample == phrasings(concept, rng=np.random.default_rng(0), k=4)
    assert set(numpy_sample) <= set(phrasings(concept))
    one = sample_phrasing(concept, random.Random(3), modality="MRI")
    assert one == sample_phrasing(concept, random.Random(3), modality="MRI")
    assert one in phrasings(concept, modality="MRI")


def test_every_phrasing_resolves_to_its_concept():
    wrong = []
    for concept in all_concepts():
        for modality in ("CT", "MRI"):
            for text in phrasings(concept, modality=modality):
                match = resolve(text)
                if match.concept is not concept:
                    wrong.append((concept.id, text, match.concept.id if match.concept else None))
    assert not wrong, wrong[:20]
