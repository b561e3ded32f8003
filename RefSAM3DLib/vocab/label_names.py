"""Label-map names -> concepts: the catalogue's exact names first, then the free-text matcher.

Kept apart from ``concepts`` (the catalogue) and ``matcher`` (free text) because it uses both, so neither
of them needs to import the other.
"""
from __future__ import annotations

import re

from .concepts import Concept, concept_by_label_name
from .matcher import resolve


def concept_for_label_name(raw_name: str) -> Concept | None:
    """Concept for a label-map name ("kidney_left", "vertebrae_L1", "peritumoral edema", "lung tumor (ROI)").

    Exact names first (TotalSegmentator v1/v2/total_mr and data-set aliases), then case-insensitive, then the
    free-text matcher, which also never flips laterality. None when nothing fits.
    """
    if not raw_name or not raw_name.strip():
        return None
    exact = concept_by_label_name(raw_name)
    if exact is not None:
        return exact
    match = resolve(re.sub(r"[_\-]+", " ", raw_name.strip()))
    return match.concept if match.matched else None
