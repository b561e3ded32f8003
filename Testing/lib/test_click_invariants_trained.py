"""Clicks that hit, with a TRAINED lite model: a click in each of several synthetic spheres returns that sphere,
and on a real CT a click in an organ returns (mostly) that organ.

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
    return RefSAM3DPredictor.from_pretrained(path, device="cpu")


@pytest.fixture(scope="module")
def predictor():
    return _trained_lite_predictor()


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def test_a_click_in_each_sphere_returns_that_sphere(predictor):
    shape = (40, 120, 120)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    body = ((j - 60) / 55.0) ** 2 + ((k - 60) / 50.0) ** 2 < 1
    array = np.where(body, 40.0, -1000.0) + np.random.default_rng(0).normal(0, 8, shape)
    spheres = {(20, 40, 40): 200.0, (20, 40, 80): -80.0, (20, 80, 40): 400.0, (20, 80, 80): 120.0}
    masks = {}
    for centre, hu in spheres.items():
        inside = (i - centre[0]) ** 2 * 4 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2 < 12 ** 2  # 2 mm slices
        array[inside] = hu + np.random.default_rng(1).normal(0, 8, int(inside.sum()))
        masks[centre] = inside
    geometry = VolumeGeometry.from_spacing(shape, (2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    volume = Volume(array.astype(np.int16), geometry, modality="CT", source="spheres")
    session = predictor.open(volume)
    for centre, truth in masks.items():
        ras = tuple(float(v) for v in geometry.ijk_to_ras(np.asarray([centre], dtype=float))[0])
        result, = session.segment(Prompt(points=[ras], point_labels=[True]))
        assert result.mask[centre], centre
        assert _dice(result.mask, truth) > 0.6, (centre, _dice(result.mask, truth))


def test_a_click_in_a_real_organ_returns_that_organ(predictor, shared_data):
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    labels = read_label_volume(folder / "seg_total_v1.nii.gz").array.astype(int)
    session = predictor.open(volume)
    from scipy import ndimage

    for value in (5, 1):  # liver, spleen
        truth = labels == value
        deepest = np.unravel_index(int(np.argmax(ndimage.distance_transform_edt(truth))), truth.shape)
        ras = tuple(float(v) for v in volume.geometry.ijk_to_ras(np.asarray([deepest], dtype=float))[0])
        result, = session.segment(Prompt(points=[ras], point_labels=[True]))
        assert result.mask[deepest]
        assert _dice(result.mask, truth) > 0.5, (value, _dice(result.mask, truth))


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
