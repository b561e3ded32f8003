"""The delineation stage: boxes, clicks and located regions -> 3D masks by the pretrained 2D medical decoder.

``DelineationStage`` (``stage.py``) is the entry point a session uses; the rest are its parts: the volume as
axial slices (``axial_slices``), what the decoder is shown (``slice_view``, ``slice_intensity``), the lazily
filled embedding store (``slice_embeddings``), one slice's decoding (``slice_segmenter``), slice-to-slice
propagation (``propagation``), a box's delineation (``box_delineation``), clicks (``click_object``,
``click_edits``) and 3D clean-up (``consistency``).
"""
from .box_delineation import Delineation
from .stage import DelineationRequest, DelineationStage, RegionPrompt

__all__ = ["Delineation", "DelineationRequest", "DelineationStage", "RegionPrompt"]
