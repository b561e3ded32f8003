"""What a client gets back for one prompt: a ``SegmentOutput`` (the form exporters and the Slicer module use) plus
the handles a later refinement needs.

``session_token`` is the server session that made it and ``refinement_id`` its handle there (the server keeps the
model's own probability under it); ``wire_mask`` is the compact mask as it came over the wire, kept so that a
refinement can send it back when the server has forgotten the handle (a restart, an expired session), even after
the full mask was dropped. It is defined on ``SegmentOutput`` rather than the engine's ``SegmentResult`` so that a
client never imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..io.segments import SegmentOutput
from .mask_codec import WireMask


@dataclass
class RemoteResult(SegmentOutput):
    session_token: str | None = None  # the server session id that made it
    refinement_id: str | None = None  # its handle on that server
    timings: dict[str, float] = field(default_factory=dict)  # the engine's, the server's and the round trip's
    wire_mask: WireMask | None = field(default=None, repr=False)
    note: str = ""  # the engine's reason for "not found", or what prompt would help
