"""The Slicer loop with the real default model on a real CT, driven through real markups events: a box on the left
kidney makes the kidney, an include click on a part it missed adds that part, an exclude click takes a part away
-- and each click changes the segment only around where it acted (the delineation stage edits locally)."""
from types import SimpleNamespace

import numpy as np
import pytest
from markups_interaction import draw_box, place_point, start_placing

pytest.importorskip("slicer")
pytest.importorskip("torch")

pytestmark = pytest.mark.slow
LOCAL_MM = 80.0  # a click's edit stays within this distance of the click


@pytest.fixture
def kidney_panel(scene, shared_data, delineating_predictor):
    import slicer
    from RefSAM3DSlicerLib import ModelWorker, RefSAM3DLogic, RefSAM3DSettings
    from RefSAM3DSlicerLib.interaction import InteractiveLoop
    from RefSAM3DSlicerLib.prompt_markups import PromptMarkups

    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    labels = read_label_volume(folder / "seg_total_v1.nii.gz").array
    node = slicer.util.addVolumeFromArray(np.transpose(volume.array, (2, 1, 0)).astype(np.int16),
                                          volume.geometry.affine, name="sample CT")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Segmentation")
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(node)
    worker = ModelWorker(predictor_factory=lambda model, device: delineating_predictor, synchronous=True)
    logic = RefSAM3DLogic(worker=worker, settings=RefSAM3DSettings(model="refsam3d-lite", device="cpu"))
    loop = InteractiveLoop(logic)
    markups = PromptMarkups(loop, lambda: (node, segmentation), ready=lambda: True)
    nodes = markups.ensure_nodes(scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode"), scene)
    yield SimpleNamespace(scene=scene, node=node, segmentation=segmentation, loop=loop, geometry=volume.geometry,
                          kidney=labels == 3, include=nodes["IncludePoints"], exclude=nodes["ExcludePoints"],
                          box=nodes["BoxROI"])
    markups.forget()
    logic.shutdown()


def _segment(panel) -> np.ndarray:
    import slicer

    segment_id = panel.loop.current.segment_id
    kji = slicer.util.arrayFromSegmentBinaryLabelmap(panel.segmentation, segment_id, panel.node)
    return np.transpose(kji, (2, 1, 0)).astype(bool)


def _dice(a, b) -> float:
    return 2 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def _ras(geometry, voxel) -> tuple[float, float, float]:
    return tuple(float(v) for v in geometry.ijk_to_ras(np.asarray([voxel], float))[0])


def _farthest_change_mm(before, after, geometry, voxel) -> float:
    changed = np.argwhere(before != after)
    if not len(changed):
        return 0.0
    return float(np.linalg.norm((changed - np.asarray(voxel)) * geometry.spacing, axis=1).max())


def test_box_then_a_click_that_adds_then_one_that_removes(kidney_panel):
    from RefSAM3DLib.evaluation.interactive import deepest_point

    panel, geometry = kidney_panel, kidney_panel.geometry
    voxels = np.argwhere(panel.kidney)
    low, high = voxels.min(0) - 0.5, voxels.max(0) + 0.5
    start_placing(panel.scene, panel.box)
    draw_box(panel.box, _ras(geometry, low), _ras(geometry, high))
    assert not any(report.error for report in panel.loop.reports), panel.loop.reports[-1].message
    boxed = _segment(panel)
    assert _dice(boxed, panel.kidney) > 0.85

    missed = panel.kidney & ~boxed  # a part of the kidney the box result left out: click it in
    assert missed.any()
    add_at = deepest_point(missed, geometry.spacing)
    start_placing(panel.scene, panel.include, persistent=True)
    place_point(panel.include, _ras(geometry, add_at))
    added = _segment(panel)
    assert added[add_at], "an include click is always inside the result"
    assert _farthest_change_mm(boxed, added, geometry, add_at) < LOCAL_MM
    assert _dice(added, panel.kidney) > 0.85

    remove_at = deepest_point(added & ~panel.kidney if (added & ~panel.kidney).any() else added, geometry.spacing)
    start_placing(panel.scene, panel.exclude, persistent=True)
    place_point(panel.exclude, _ras(geometry, remove_at))
    removed = _segment(panel)
    assert not removed[remove_at], "an exclude click is always outside the result"
    assert _farthest_change_mm(added, removed, geometry, remove_at) < LOCAL_MM
    assert _dice(removed, added) > 0.8  # the rest of the kidney stays
    assert len(panel.loop.reports) == 3 and not any(report.error for report in panel.loop.reports)
