"""What one prompt produced, in the form every exporter and the Slicer module consume."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..vocab.codes import Terminology


@dataclass
class SegmentOutput:
    name: str  # display name, e.g. "left kidney"
    mask: np.ndarray  # bool (I, J, K) on the input volume's grid
    color: tuple[float, float, float]  # RGB in 0..1
    terminology: Terminology
    prompt: str | None = None  # the text the user typed (None for click-only prompts)
    concept_id: str | None = None  # vocabulary id when the text matched a known structure
    presence: float | None = None  # model's probability that the structure is in the volume
    found: bool = True  # False: judged "not found" -> the mask is empty
    volume_ml: float = 0.0
    algorithm_type: str = "SEMIAUTOMATIC"  # DICOM SegmentAlgorithmType: AUTOMATIC (text only) / SEMIAUTOMATIC
    probability: np.ndarray | None = None  # optional float32 (I, J, K) in 0..1
