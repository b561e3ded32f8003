"""Where organs should be: the shipped labelled reference CT registered onto a patient's CT.

The network's own text grounding was learned from one labelled abdominal CT and does not find organs on
new patients; an affine registration of that same CT does, so a text prompt for a structure the reference
knows is turned into the box and the dense prompt the network handles well (``prior.py``).
"""
from .prior import AnatomyPrior, RegionHint

__all__ = ["AnatomyPrior", "RegionHint"]
