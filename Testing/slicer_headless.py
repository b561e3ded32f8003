"""A working MRML scene with the module logics Slicer's Python utilities expect, without the Slicer application.

slicer-core ships MRML and the module logics but no ``slicer.app``; ``slicer.util`` helpers look logics up
through ``slicer.modules.<name>.logic()``, so we register real logics on a real scene and expose them there.
"""
from __future__ import annotations

import types

_scene = None


def init_headless_slicer():
    """Create (once per process) and return the MRML scene; later calls reuse it after clearing it."""
    global _scene
    import slicer
    from vtkmodules.vtkCommonCore import vtkCollection

    if _scene is not None:
        _scene.Clear(0)
        return _scene
    scene = slicer.vtkMRMLScene()
    application_logic = slicer.vtkSlicerApplicationLogic()
    application_logic.SetMRMLScene(scene)
    application_logic.GetColorLogic().SetMRMLScene(scene)
    application_logic.GetColorLogic().AddDefaultColorNodes()
    application_logic.SetSliceLogics(vtkCollection())
    application_logic.SetViewLogics(vtkCollection())

    def register(logic, module_name):
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(application_logic)
        application_logic.SetModuleLogic(module_name, logic)
        return logic

    logics = {
        "colors": register(slicer.vtkMRMLColorLogic(), "Colors"),
        "volumes": register(slicer.vtkSlicerVolumesLogic(), "Volumes"),
        "segmentations": register(slicer.vtkSlicerSegmentationsModuleLogic(), "Segmentations"),
        "subjecthierarchy": register(slicer.vtkSlicerSubjectHierarchyModuleLogic(), "SubjectHierarchy"),
        "markups": register(slicer.vtkSlicerMarkupsLogic(), "Markups"),  # what the place widgets call
    }
    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(
        **{name: types.SimpleNamespace(logic=(lambda bound=logic: bound)) for name, logic in logics.items()})
    slicer._refsam3d_application_logic = application_logic  # keep it alive as long as the scene
    _scene = scene
    return scene
