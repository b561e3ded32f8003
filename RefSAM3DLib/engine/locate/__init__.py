"""The locate stage: where a text prompt points on a new CT, from registered labelled reference CTs.

``LocateStage`` (``stage.py``) is what a session uses; its parts: the shipped references (``references``), where
along the body a scan sits (``body_profile``), the affine fit with its verdicts (``registration``) and the
fusion of several references into one region (``fusion``).
"""
from .stage import LocateStage, Region

__all__ = ["LocateStage", "Region"]
