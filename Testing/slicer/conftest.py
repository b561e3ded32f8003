"""Fixtures for the Slicer module's Logic under plain pytest: a real headless MRML scene (slicer-core),
a tiny random RefSAM3D model on the CPU, synthetic volumes with RAS, LPS-like and oblique grids."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest

MODULE_DIR = Path(__file__).resolve().parents[2] / "RefSAM3DSlicer"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

VOLUME_SHAPE_KJI = (14, 18, 22)  # small: the tiny model tiles it with a few 32^3 windows at 4 mm


@contextlib.contextmanager
def one_thread():
    """The tiny model's matrices are small: one thread avoids thread contention on small CI machines
    (2 cores shared with other jobs made each prompt 20x slower with torch's default thread count)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def one_torch_thread():
    try:
        import torch  # noqa: F401
    except ImportError:
        yield
        return
    with one_thread():
        yield


@pytest.fixture
def scene():
    pytest.importorskip("slicer")
    from slicer_headless import init_headless_slicer

    return init_headless_slicer()


def grid_matrix(kind: str) -> np.ndarray:
    """IJK->RAS of a test grid: 'ras' (axes along R, A, S), 'lps' (DICOM-like), 'oblique' (rotated)."""
    spacing = np.array([2.0, 2.5, 3.0])
    if kind == "ras":
        direction = np.eye(3)
    elif kind == "lps":
        direction = np.diag([-1.0, -1.0, 1.0])
    elif kind == "oblique":
        angle = np.deg2rad(25.0)
        rotate_z = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        rotate_x = np.array([[1, 0, 0], [0, np.cos(0.4), -np.sin(0.4)], [0, np.sin(0.4), np.cos(0.4)]])
        direction = rotate_z @ rotate_x
    else:
        raise ValueError(kind)
    matrix = np.eye(4)
    matrix[:3, :3] = direction * spacing
    matrix[:3, 3] = [12.5, -30.0, 7.0]
    return matrix


def make_volume_node(kind: str = "ras", seed: int = 0, name: str | None = None):
    """A CT-like scalar volume: noisy soft tissue with a bright ellipsoid, int16 in HU."""
    import slicer

    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*[np.linspace(-1, 1, n) for n in VOLUME_SHAPE_KJI], indexing="ij")
    array = rng.normal(40, 15, VOLUME_SHAPE_KJI)
    array[(i / 0.6) ** 2 + (j / 0.5) ** 2 + (k / 0.7) ** 2 < 1] += 150
    node = slicer.util.addVolumeFromArray(array.astype(np.int16), grid_matrix(kind), name=name or f"CT {kind}")
    assert node is not None and node.GetImageData() is not None
    return node


def make_segmentation_node(scene, volume_node, name="Segmentation"):
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    return node


@pytest.fixture(scope="session")
def tiny_predictor():
    """A random-weight tiny RefSAM3D on the CPU: arbitrary masks, but real geometry, naming and scene behaviour."""
    torch = pytest.importorskip("torch")

    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
    from RefSAM3DLib.modeling.config import get_config
    from RefSAM3DLib.modeling.refsam3d import RefSAM3D

    with one_thread():
        torch.manual_seed(0)
        return RefSAM3DPredictor(RefSAM3D(get_config("tiny")), device="cpu", presence_threshold=0.0)


@pytest.fixture(scope="session")
def partial_threshold(tiny_predictor):
    """A probability threshold that leaves a partial mask (neither empty nor the whole volume).

    Random weights put every probability in a narrow band, so the usual 0.5 would give empty masks.
    """
    from RefSAM3DSlicerLib.mrml_adapter import volume_from_node
    from slicer_headless import init_headless_slicer

    from RefSAM3DLib.engine.prompts import Prompt

    init_headless_slicer()
    volume = volume_from_node(make_volume_node("ras"))
    with one_thread():
        result, = tiny_predictor.open(volume).segment(Prompt(text="liver"), return_probability=True,
                                                      presence_threshold=0.0)
    return float(np.quantile(result.probability, 0.6))


@pytest.fixture
def make_logic(tiny_predictor, partial_threshold):
    """Build a Logic on the tiny model; ``synchronous`` runs the worker inline, settings override defaults."""
    from RefSAM3DSlicerLib import ModelWorker, RefSAM3DLogic, RefSAM3DSettings

    created = []

    def build(synchronous: bool = True, **settings):
        values = {"presence_threshold": 0.0, "threshold": partial_threshold, "model": "tiny-test", "device": "cpu"}
        values.update(settings)
        worker = ModelWorker(predictor_factory=lambda model, device: tiny_predictor, synchronous=synchronous)
        logic = RefSAM3DLogic(worker=worker, settings=RefSAM3DSettings(**values))
        created.append(logic)
        return logic

    yield build
    for logic in created:
        logic.shutdown()


def segment_state(segmentation_node, volume_node) -> dict:
    """Everything a user could see of a segmentation: ordered IDs, names, colours and voxel arrays."""
    import slicer

    segmentation = segmentation_node.GetSegmentation()
    state = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        array = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, volume_node).copy()
        state[segment_id] = (segment.GetName(), tuple(round(c, 6) for c in segment.GetColor()), array)
    return state


def assert_same_state(before: dict, after: dict) -> None:
    assert list(before) == list(after), "segment IDs or their order changed"
    for segment_id, (name, color, array) in before.items():
        name_after, color_after, array_after = after[segment_id]
        assert name_after == name and color_after == color, f"metadata of {segment_id} changed"
        assert np.array_equal(array_after, array), f"voxels of '{name}' changed"


@pytest.fixture
def make_volume(scene):
    return make_volume_node


@pytest.fixture
def make_segmentation(scene):
    return lambda volume_node, name="Segmentation": make_segmentation_node(scene, volume_node, name)


@pytest.fixture
def snapshot():
    """``snapshot(segmentation_node, volume_node)`` -> comparable state; ``snapshot.same(a, b)`` asserts equality."""
    segment_state.same = assert_same_state
    return segment_state
