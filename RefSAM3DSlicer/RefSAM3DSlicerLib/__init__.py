# ruff: noqa: N999 - Slicer names a module's helper package <Module>Lib
"""Pure-Python core of the RefSAM3D Slicer module: everything testable without Qt (runs on slicer-core).

RefSAM3DSlicer.py keeps only the Qt widget and thin Slicer classes; the work happens here:
``logic`` (prompts in, segments out), ``interaction`` (the click loop: per-object state, queued clicks, undo),
``pending`` (a running prompt and its outcome), ``mrml_adapter`` (nodes <-> backend values), ``prompts_from_markups``,
``prompt_markups`` (the panel's markups and their events -> loop actions),
``worker`` (the persistent compute thread) handing jobs to ``local_engine`` (the model here) or ``server_engine`` (a
RefSAM3D server), both behind ``compute`` (the target and the interface), ``undo`` + ``segment_fingerprint`` (undo that never overwrites a later
edit), ``export``, ``batch``, ``parameter_node``, ``settings``, ``shortcuts``, ``choices`` and ``dependencies``.
``supported_slicer`` runs first: on a Slicer older than 5.10 the package refuses to import with one clear line.
"""
from .supported_slicer import refuse_unsupported_slicer

refuse_unsupported_slicer()  # before any import that needs Python 3.10

from .compute import ComputeTarget  # noqa: E402
from .errors import InputError  # noqa: E402
from .interaction import InteractiveLoop  # noqa: E402
from .logic import RefSAM3DLogic, split_prompt_text  # noqa: E402
from .pending import PendingSegmentation, SegmentationOutcome  # noqa: E402
from .settings import JsonSettingsStore, MemorySettingsStore, QSettingsStore, RefSAM3DSettings  # noqa: E402
from .worker import ModelWorker  # noqa: E402

__all__ = ["ComputeTarget", "InputError", "InteractiveLoop", "JsonSettingsStore", "MemorySettingsStore", "ModelWorker", "PendingSegmentation",
           "QSettingsStore", "RefSAM3DLogic", "RefSAM3DSettings", "SegmentationOutcome", "split_prompt_text"]
