"""Varied prompt phrasings of a concept, so training sees how people actually ask for a structure.

A model trained only on "liver" learns nothing about "Perform liver segmentation" or "CT images, liver tumor
segmentation" (the RefSAM3D paper's prompt style). Every phrasing here resolves back to its own concept
through `matcher.resolve`, which the tests check, so training text and inference text stay consistent.
"""
from __future__ import annotations

from .concepts import Concept

TEMPLATES: tuple[str, ...] = (
    "{name}",
    "the {name}",
    "{name} segmentation",
    "segment the {name}",
    "segment {name}",
    "perform {name} segmentation",
    "segmentation of the {name}",
    "{modality} of the {name}",
    "{modality} image of the {name}",
    "{modality} images, {name} segmentation",
    "delineate the {name}",
    "outline the {name}",
    "contour the {name}",
    "where is the {name}?",
    "show me the {name}",
    "find the {name}",
    "please segment the {name}",
    "{name} mask",
    "label the {name} on this {modality} scan",
    "highlight the {name}",
)


def names_of(concept: Concept) -> tuple[str, ...]:
    """The canonical name first, then every synonym (each once)."""
    return tuple(dict.fromkeys((concept.name, *concept.synonyms)))


def phrasings(concept: Concept, modality: str = "CT", rng=None, k: int | None = None) -> list[str]:
    """Prompt texts for `concept`: every name x every template, in a fixed order.

    With `rng` (random.Random or numpy.random.Generator) the list is shuffled by it; `k` keeps the first k.
    The same rng state always gives the same list, so training runs are reproducible.
    """
    texts = list(dict.fromkeys(template.format(name=name, modality=modality)
                               for name in names_of(concept) for template in TEMPLATES))
    if rng is not None:
        rng.shuffle(texts)
    return texts if k is None else texts[:max(0, int(k))]


def sample_phrasing(concept: Concept, rng, modality: str = "CT") -> str:
    """One random phrasing (a random name in a random template) without building the whole list."""
    names = names_of(concept)
    name = names[int(rng.random() * len(names)) % len(names)]
    template = TEMPLATES[int(rng.random() * len(TEMPLATES)) % len(TEMPLATES)]
    return template.format(name=name, modality=modality)
