"""Clicks that hit, with the TRAINED lite network's own 3D decoder (the delineation stage switched off -- that is
the path users get with ``--no-delineation`` and the one a GPU-trained model must improve before it answers
clicks again): a click in each of several synthetic spheres returns that sphere, and on a real CT a click in
an organ is always in its mask. Where the network falls short of what a click should give (an organ, a
fat-density sphere), a strict xfail records it: it turns red when a better model fixes it, so the card and
this file get updated. The product path (the delineation stage) is tested in test_delineation_clicks.py.

The model is the bundled lite model once one ships (``refsam3d-lite`` in the catalogue), or the checkpoint named
by ``REFSAM3D_TEST_LITE_MODEL``; without either these tests are skipped (the engine-side invariants are tested
with a random model in test_engine_lite.py).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume


def _trained_lite_predictor():
    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor

    path = os.environ.get("REFSAM3D_TEST_LITE_MODEL")
    if not path:
        from RefSAM3DLib.zoo.catalogue import load_catalogue

        names = {entry.name for entry in load_catalogue()}
        if "refsam3d-lite" not in names:
            pytest.skip("no trained lite model ships yet; set REFSAM3D_TEST_LITE_MODEL to a checkpoint")
        path = "refsam3d-lite"
    return RefSAM3DPredictor.from_pretrained(path, device="cpu", delineation=False)


@pytest.fixture(scope="module")
def predictor():
    return _trained_lite_predictor()


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


SPHERES_HU = {(20, 40, 40): 200.0, (20, 80, 40): 400.0, (20, 80, 80): 120.0}  # contrast, bone, soft tissue
FAT_SPHERE = ((20, 40, 80), -80.0)


def _spheres_session(predictor):
    """Four spheres of distinct intensity in a water-like body (2 mm slices); -> session, {centre: mask}."""
    shape = (40, 120, 120)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    body = ((j - 60) / 55.0) ** 2 + ((k - 60) / 50.0) ** 2 < 1
    array = np.where(body, 40.0, -1000.0) + np.random.default_rng(0).normal(0, 8, shape)
    masks = {}
    for centre, hu in {**SPHERES_HU, FAT_SPHERE[0]: FAT_SPHERE[1]}.items():
        inside = (i - centre[0]) ** 2 * 4 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2 < 12 ** 2  # 2 mm slices
        array[inside] = hu + np.random.default_rng(1).normal(0, 8, int(inside.sum()))
        masks[centre] = inside
    geometry = VolumeGeometry.from_spacing(shape, (2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    volume = Volume(array.astype(np.int16), geometry, modality="CT", source="spheres")
    return predictor.open(volume), masks


def _click(session, centre):
    ras = tuple(float(v) for v in session.volume.geometry.ijk_to_ras(np.asarray([centre], dtype=float))[0])
    result, = session.segment(Prompt(points=[ras], point_labels=[True]))
    return result


@pytest.fixture(scope="module")
def spheres(predictor):
    return _spheres_session(predictor)


def test_a_click_in_each_sphere_returns_that_sphere(spheres):
    session, masks = spheres
    for centre in masks:
        assert _click(session, centre).mask[centre], centre  # every sphere, the fat one included
    for centre in SPHERES_HU:
        dice = _dice(_click(session, centre).mask, masks[centre])
        assert dice > 0.6, (centre, dice)


@pytest.mark.xfail(strict=True, reason="refsam3d-lite (175 CPU steps) returns a small blob for a fat-density sphere "
                   "(Dice 0.12; the other spheres 0.77-0.89); see its model card")
def test_a_click_in_a_fat_density_sphere_returns_that_sphere(spheres):
    session, masks = spheres
    centre = FAT_SPHERE[0]
    assert _dice(_click(session, centre).mask, masks[centre]) > 0.6


def _organ_click(predictor, shared_data, value: int):
    """One click at the deepest point of label ``value`` on P1's CT; -> (result, truth, clicked voxel)."""
    from scipy import ndimage

    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    truth = read_label_volume(folder / "seg_total_v1.nii.gz").array.astype(int) == value
    deepest = np.unravel_index(int(np.argmax(ndimage.distance_transform_edt(truth))), truth.shape)
    ras = tuple(float(v) for v in volume.geometry.ijk_to_ras(np.asarray([deepest], dtype=float))[0])
    result, = predictor.open(volume).segment(Prompt(points=[ras], point_labels=[True]))
    return result, truth, deepest


def test_a_click_in_a_real_organ_is_always_in_its_mask(predictor, shared_data):
    for value in (1, 2, 3, 5):  # spleen, right kidney, left kidney, liver
        result, truth, deepest = _organ_click(predictor, shared_data, value)
        assert result.found and result.mask[deepest], value


@pytest.mark.xfail(strict=True, reason="refsam3d-lite returns only the small region the engine keeps around one "
                   "click in the spleen and the liver (Dice < 0.01 here; kidneys 0.2-0.4); see its model card")
def test_a_click_in_a_real_organ_returns_that_organ(predictor, shared_data):
    for value in (1, 5):  # spleen, liver
        result, truth, _ = _organ_click(predictor, shared_data, value)
        assert _dice(result.mask, truth) > 0.5, value


def _crop(volume: Volume, k0: int, k1: int) -> Volume:
    """Slices k0..k1-1 (third voxel axis) of a volume, with the matching geometry."""
    affine = volume.geometry.affine.copy()
    affine[:3, 3] = volume.geometry.ijk_to_ras(np.asarray([[0.0, 0.0, float(k0)]]))[0]
    array = np.asarray(volume.array)[:, :, k0:k1]
    return Volume(array, VolumeGeometry(affine, array.shape), modality=volume.modality, source="crop")


def test_presence_depends_on_the_image(predictor, shared_data):
    """The same prompt is "found" where the structure is and not where it is not."""
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    liver = read_label_volume(folder / "seg_total_v1.nii.gz").array.astype(int) == 5
    slices = np.flatnonzero(liver.any(axis=(0, 1)))  # P1 is RAS: the third axis runs towards the head
    assert slices.min() > 25, "P1's pelvis slices hold no liver"
    with_liver = _crop(volume, int(slices.min()), int(slices.max()) + 1)
    no_liver = _crop(volume, 0, int(slices.min()) - 5)
    found, = predictor.open(with_liver).segment(Prompt(text="liver"))
    absent, = predictor.open(no_liver).segment(Prompt(text="liver"))
    assert found.presence > absent.presence + 0.2, (found.presence, absent.presence)
    assert found.found and not absent.found
