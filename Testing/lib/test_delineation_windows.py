"""Which CT window a prompt is decoded in, and what an include edit may add on CT (no network: the choice reads
the voxels only).

A nodule ringed by aerated lung gets the lesion window (its rim of partial volume is where its contour is drawn),
the lung itself the lung window, tissue inside the body the soft-tissue window; a click on a nodule's rim that
the decoder answers with the lung beside it adds the rim only.
"""
from __future__ import annotations

import numpy as np
import torch

from RefSAM3DLib.engine.delineate.click_edits import _without_new_air
from RefSAM3DLib.engine.delineate.stage import DelineationStage
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume


def _chest() -> tuple[DelineationStage, np.ndarray, np.ndarray, np.ndarray]:
    """A soft-tissue body (40 HU) with an aerated lung (-850 HU) holding a solid 8 mm nodule (40 HU); 1 mm
    pixels, 2 mm slices. -> stage, nodule, lung and a block of tissue far from it, on the stage's (z, row, col)
    grid."""
    shape = (120, 120, 40)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    array = np.full(shape, 40.0)
    lung = (np.abs(i - 40) < 30) & (np.abs(j - 60) < 40) & (np.abs(k - 20) < 15)
    nodule = (i - 40) ** 2 + (j - 60) ** 2 + ((k - 20) * 2) ** 2 <= 8 ** 2
    array[lung & ~nodule] = -850.0
    body = (i >= 100) & (i < 112) & (j >= 5) & (j < 15) & (k >= 2) & (k < 6)
    geometry = VolumeGeometry.from_spacing(shape, (1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0))
    stage = DelineationStage(None, Volume(array.astype(np.int16), geometry, modality="CT", source="chest"), "CT",
                             torch.device("cpu"))
    return stage, *(stage.slices.mask_from_volume(m) for m in (nodule, lung & ~nodule, body))


def _box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    occupied = np.argwhere(mask)
    return occupied.min(0).astype(float), occupied.max(0).astype(float)


def _centre(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(0)


def test_a_nodule_in_lung_gets_the_lesion_window_the_lung_the_lung_window_the_body_the_soft_one():
    stage, nodule, lung, body = _chest()
    assert stage.window_for(_box(nodule)).name == "lesion"
    click = _centre(nodule)
    assert stage.window_for(stage._surroundings(click), clicked=click).name == "lesion"
    assert stage.window_for(_box(lung)).name == "lung"  # the lung's box: mostly air
    on_lung = np.argwhere(lung)[0].astype(float)
    assert stage.window_for(stage._surroundings(on_lung), clicked=on_lung).name == "lung"
    assert stage.window_for(_box(body)).name == "soft"
    assert stage.window_for(stage._surroundings(_centre(body)), clicked=_centre(body)).name == "soft"


def test_an_include_edit_on_a_solid_mask_adds_no_air_unless_the_click_is_on_air():
    current = np.zeros((40, 40), bool)
    current[10:20, 10:20] = True  # a solid nodule's slice
    black = np.zeros_like(current)
    black[5:35, 22:38] = True  # aerated lung beside it (black in the window)
    redrawn = current.copy()
    redrawn[10:20, 20:22] = True  # the rim the click asked for
    redrawn[8:30, 22:36] = True  # and the lung the decoder took with it
    kept = _without_new_air(redrawn, current, black, (15, 21))
    assert kept[15, 21] and kept[current].all() and not (kept & black).any()
    assert np.array_equal(_without_new_air(redrawn, current, black, (12, 30)), redrawn)  # the click on air
    airy = current | (black & (np.arange(40)[None, :] < 24))  # a mask that holds air already (a stomach's gas)
    assert np.array_equal(_without_new_air(redrawn, airy, black, (15, 21)), redrawn)
