"""Coded terminology values (DICOM code triplets) used by segment names, Slicer terminology and DICOM-SEG."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    value: str  # e.g. "10200004"
    scheme: str  # coding scheme designator, e.g. "SCT"
    meaning: str  # e.g. "Liver"


@dataclass(frozen=True)
class Terminology:
    """Segmented property category / type / type modifier, as DICOM-SEG and Slicer terminologies need them."""

    category: Code
    type: Code
    modifier: Code | None = None  # laterality etc.
    anatomic_region: Code | None = None  # where a lesion type sits, e.g. Liver for "liver tumor" (type Neoplasm)
    anatomic_region_modifier: Code | None = None  # e.g. Left for "left kidney cyst"
