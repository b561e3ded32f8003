"""The module's in-app self-test (segment/undo and the interactive loop), run headless: Qt and Slicer's
scripted-module base classes are stubbed,
MRML, the worker thread and the tiny model are real. Catches errors in RefSAM3DSlicer.py that only the
Slicer app would otherwise reveal (the Logic's base classes, the test's own code)."""
import importlib.util
import sys
import types
import unittest
from pathlib import Path

import pytest

pytest.importorskip("slicer")
pytest.importorskip("torch")

MODULE_FILE = Path(__file__).resolve().parents[2] / "RefSAM3DSlicer" / "RefSAM3DSlicer.py"


def scripted_module_stubs():
    """Stand-ins for slicer.ScriptedLoadableModule and qt, just enough to import the module file."""
    stubs = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent):
            self.parent = parent

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None):
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent=None):
            self.parent = parent
            self.moduleName = type(self).__name__.removesuffix("Logic")

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def delayDisplay(self, message, msec=None):  # noqa: N802 - Slicer's name
            self.displayed = [*getattr(self, "displayed", []), message]

    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
                ScriptedLoadableModuleTest):
        setattr(stubs, cls.__name__, cls)
    qt = types.ModuleType("qt")
    qt.QSettings = object
    return stubs, qt


def test_in_app_self_test_passes(monkeypatch, scene):
    import slicer

    stubs, qt = scripted_module_stubs()
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", stubs)
    monkeypatch.setitem(sys.modules, "qt", qt)
    pumped = []
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(processEvents=lambda: pumped.append(1)), raising=False)
    spec = importlib.util.spec_from_file_location("RefSAM3DSlicer_under_test", MODULE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    test = module.RefSAM3DSlicerTest("test_segment_undo_and_not_found")
    test.runTest()
    assert test.displayed == ["RefSAM3D: segment, undo, not found", "Test passed",
                              "RefSAM3D: interactive loop", "Test passed",
                              "RefSAM3D: clicks and box from markups", "Test passed"]
    assert isinstance(module.RefSAM3DSlicerLogic(settings=module.RefSAM3DSettings()), stubs.ScriptedLoadableModuleLogic)
