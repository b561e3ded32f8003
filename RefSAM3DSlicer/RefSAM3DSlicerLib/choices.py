"""What the panel offers to pick from: where to compute, models of the zoo, devices, phrases for prompt completion.

Each list degrades to something usable when the backend is not installed yet (a fresh Slicer before the
dependency install), so the module panel always opens.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .settings import DEFAULT_MODEL, DEVICES

log = logging.getLogger(__name__)

# Catalogue entries that are training inputs, not RefSAM3D models (plain 2D SAM weights cannot read text).
TRAINING_ONLY_MODELS = frozenset({"sam-vit-b"})


@dataclass(frozen=True)
class ModelChoice:
    name: str  # what goes into settings.model
    description: str  # tooltip


def model_choices() -> list[ModelChoice]:
    """Segmentation models of the zoo catalogue, bundled first."""
    try:
        from RefSAM3DLib.zoo.catalogue import load_catalogue

        entries = sorted(load_catalogue(), key=lambda e: not e.bundled)
    except Exception as error:  # noqa: BLE001 - backend missing or catalogue damaged: offer the default
        log.info("model catalogue unavailable (%s)", error)
        return [ModelChoice(DEFAULT_MODEL, "RefSAM3D lite model")]
    choices = [ModelChoice(e.name, f"{e.description} (version {e.version}, licence {e.licence})")
               for e in entries if e.name not in TRAINING_ONLY_MODELS]
    return choices or [ModelChoice(DEFAULT_MODEL, "RefSAM3D lite model")]


def device_choices() -> tuple[str, ...]:
    return DEVICES


def compute_choices() -> list[tuple[str, str]]:
    """(label, settings.compute value) for the "Compute on" box."""
    return [("this computer", "local"), ("a RefSAM3D server", "server")]


def prompt_completions(recent: list[str] | None = None) -> list[str]:
    """Recent prompts first, then every canonical structure name and synonym of the vocabulary."""
    phrases: list[str] = list(recent or [])
    try:
        from RefSAM3DLib.vocab.concepts import all_concepts

        for concept in all_concepts():
            phrases.append(concept.name)
            phrases.extend(concept.synonyms)
    except Exception as error:  # noqa: BLE001 - vocabulary not installed yet: history only
        log.info("structure vocabulary unavailable (%s)", error)
    seen: set[str] = set()
    unique = []
    for phrase in phrases:
        key = phrase.strip().lower()
        if key and key not in seen:
            seen.add(key)
            unique.append(phrase.strip())
    return unique
