"""Shared test setup: offline model hubs, importable test helpers, and the optional shared data folder."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sys
from pathlib import Path

import pytest

TESTING_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTING_DIR.parent
# helpers (slicer_headless, lib/dicom_series) import by module name whatever pytest's import mode
for helper_dir in (TESTING_DIR, TESTING_DIR / "lib"):
    if str(helper_dir) not in sys.path:
        sys.path.insert(0, str(helper_dir))


def shared_data_dir() -> Path | None:
    """Real test volumes kept next to the repository (../shared/data); CI has them, user machines may not."""
    folder = REPO_ROOT.parent / "shared" / "data"
    return folder if folder.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = shared_data_dir()
    if folder is None:
        pytest.skip("shared test data (../shared/data next to the repository) is not available")
    return folder


@pytest.fixture
def make_segments():
    """Build SegmentOutputs for exporter tests: liver and left kidney overlap, a third touches the grid's
    corner (edge voxels), and "spleen" was not found (empty mask)."""
    import numpy as np

    from RefSAM3DLib.io.segments import SegmentOutput
    from RefSAM3DLib.vocab.codes import Code, Terminology

    anatomy = Code("123037004", "SCT", "Anatomical Structure")

    def build(shape):
        liver = np.zeros(shape, bool)
        liver[1 : shape[0] // 2, 2 : shape[1] - 3, 1 : shape[2] // 2 + 2] = True
        kidney = np.zeros(shape, bool)
        kidney[shape[0] // 3 : shape[0] - 2, shape[1] // 2 :, shape[2] // 2 : shape[2] - 1] = True  # overlaps liver
        corner = np.zeros(shape, bool)
        corner[-3:, :2, :3] = True
        corner[0, -1, -1] = True
        return [
            SegmentOutput("liver", liver, (0.87, 0.51, 0.39), Terminology(anatomy, Code("10200004", "SCT", "Liver")),
                          prompt="liver", concept_id="liver", presence=0.99, algorithm_type="AUTOMATIC"),
            SegmentOutput("left kidney", kidney, (0.72, 0.31, 0.25),
                          Terminology(anatomy, Code("64033007", "SCT", "Kidney"), Code("7771000", "SCT", "Left")),
                          prompt="left kidney", concept_id="kidney_left", presence=0.97),
            SegmentOutput("corner lesion", corner, (0.1, 0.8, 0.2),
                          Terminology(Code("49755003", "SCT", "Morphologically Altered Structure"),
                                      Code("108369006", "SCT", "Neoplasm")), prompt=None),
            SegmentOutput("spleen", np.zeros(shape, bool), (0.62, 0.35, 0.71),
                          Terminology(anatomy, Code("78961009", "SCT", "Spleen")), prompt="spleen",
                          concept_id="spleen", presence=0.02, found=False, algorithm_type="AUTOMATIC"),
        ]

    return build


@pytest.fixture(scope="session")
def delineating_predictor():
    """The shipped default model on the CPU, with its delineation stage (LiteMedSAM as published); loaded once."""
    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor

    predictor = RefSAM3DPredictor.from_pretrained(device="cpu")
    if not predictor.delineation:
        pytest.skip("the default model has no delineation network")
    return predictor
