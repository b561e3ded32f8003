"""Training's name for label names -> prompts (defined in ``cases.vocabulary_bridge``, shared with evaluation)."""
from ..cases.vocabulary_bridge import (
    BODY_REGIONS,
    MAX_PHRASES,
    StructureText,
    absent_groups,
    allowed,
    concept_of,
    negatives_pool,
    same_concept,
    structures_of,
)

__all__ = ["BODY_REGIONS", "MAX_PHRASES", "StructureText", "absent_groups", "allowed", "concept_of",
           "negatives_pool", "same_concept", "structures_of"]
