# ruff: noqa: N999 - Slicer names a module's helper package <Module>Lib
"""Pure-Python core of the RefSAM3D Slicer module: everything testable without Qt (runs on slicer-core).

RefSAM3DSlicer.py keeps only the Qt widget and thin Slicer classes; the work happens here:
``logic`` (prompts in, segments out), ``interaction`` (the click loop: per-object state, queued clicks, undo),
``pending`` (a running prompt and its outcome), ``mrml_adapter`` (nodes <-> backend values), ``prompts_from_markups``,
``worker`` (the model's persistent thread), ``undo`` + ``segment_fingerprint`` (undo that never overwrites a later
edit), ``export``, ``batch``, ``parameter_node``, ``settings``, ``shortcuts``, ``choices`` and ``dependencies``.
"""
from .errors import InputError
from .interaction import InteractiveLoop
from .logic import RefSAM3DLogic, split_prompt_text
from .pending import PendingSegmentation, SegmentationOutcome
from .settings import JsonSettingsStore, MemorySettingsStore, QSettingsStore, RefSAM3DSettings
from .worker import ModelWorker

__all__ = ["InputError", "InteractiveLoop", "JsonSettingsStore", "MemorySettingsStore", "ModelWorker", "PendingSegmentation",
           "QSettingsStore", "RefSAM3DLogic", "RefSAM3DSettings", "SegmentationOutcome", "split_prompt_text"]
