"""Session behaviour: cached embeddings, prompts sharing work, clicks working locally, cancel, OOM fallback."""
import threading

import numpy as np
import pytest
import torch
from engine_fixtures import ct_volume, tiny_predictor

from RefSAM3DLib.engine.errors import Cancelled, PromptError
from RefSAM3DLib.engine.prompts import Prompt


@pytest.fixture(scope="module")
def volume():
    return ct_volume()


def test_results_live_on_the_input_grid(volume):
    session = tiny_predictor().open(volume)
    (liver,) = session.segment(Prompt(text="liver"))
    assert liver.mask.shape == volume.geometry.shape and liver.mask.dtype == bool
    assert liver.name == "liver" and liver.concept_id == "liver" and liver.terminology.type.value == "10200004"
    assert liver.algorithm_type == "AUTOMATIC"
    assert liver.volume_ml == pytest.approx(liver.mask.sum() * volume.geometry.voxel_volume_ml)


def test_second_prompt_reuses_the_cached_encoder_and_matches_a_fresh_session(volume):
    predictor = tiny_predictor()
    session = predictor.open(volume)
    first = session.segment(Prompt(text="liver"))[0]
    encoded = session.encoded_windows
    assert encoded == len(session.volume_windows())
    again = session.segment([Prompt(text="spleen"), Prompt(text="liver")])
    assert session.encoded_windows == encoded  # no encoder work for new prompts on the same volume
    fresh = predictor.open(volume).segment(Prompt(text="liver"))[0]
    assert np.array_equal(first.mask, again[1].mask) and np.array_equal(first.mask, fresh.mask)
    assert not np.array_equal(session.model_probability(again[0]).numpy(), session.model_probability(again[1]).numpy())


def test_a_click_refines_locally_without_rerunning_the_volume(volume):
    session = tiny_predictor().open(volume)
    base = session.segment(Prompt(text="liver"))[0]
    encoded = session.encoded_windows
    point = tuple(volume.geometry.ijk_to_ras(np.asarray([[14, 18, 15]]))[0])
    refined = session.segment(Prompt(text="liver", points=[point], previous=base))[0]
    assert session.encoded_windows - encoded <= 1  # at most the one click-centred window is new
    assert refined.algorithm_type == "SEMIAUTOMATIC"
    changed = session.model_probability(base).float() != session.model_probability(refined).float()
    touched = np.argwhere(changed.numpy())
    window = np.asarray(session.window)
    assert len(touched) and (touched.max(0) - touched.min(0) < window).all()  # only one window changed


def test_click_only_prompt_encodes_only_the_window_around_the_click(volume):
    session = tiny_predictor().open(volume)
    point = tuple(volume.geometry.ijk_to_ras(np.asarray([[20, 18, 15]]))[0])
    result = session.segment(Prompt(points=[point], point_labels=[True]))[0]
    assert session.encoded_windows == 1
    assert result.found and result.prompt is None and result.name == "Segment"


def test_box_limits_the_result_to_the_box(volume):
    session = tiny_predictor().open(volume)
    corners = volume.geometry.ijk_to_ras(np.asarray([[10, 10, 8], [22, 24, 20]]))
    result = session.segment(Prompt(text="liver", box=(tuple(corners[0]), tuple(corners[1]))))[0]
    inside = np.zeros(volume.geometry.shape, bool)
    inside[9:24, 9:26, 7:22] = True
    assert not (result.mask & ~inside).any()


def test_not_found_gives_an_empty_mask(volume):
    session = tiny_predictor(presence_threshold=1.01).open(volume)
    result = session.segment(Prompt(text="brain"))[0]
    assert not result.found and not result.mask.any() and result.volume_ml == 0


def test_bad_prompts_fail_clearly(volume):
    session = tiny_predictor().open(volume)
    with pytest.raises(PromptError, match="outside the volume"):
        session.segment(Prompt(text="liver", points=[(5000.0, 0.0, 0.0)]))
    with pytest.raises(PromptError, match="empty text prompt"):
        Prompt(text="   ")
    with pytest.raises(PromptError, match="needs text, a point or a box"):
        Prompt()


def test_cancel_stops_between_windows_and_returns_nothing(volume):
    session = tiny_predictor().open(volume)
    flag = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        flag.set()

    with pytest.raises(Cancelled):
        session.segment(Prompt(text="liver"), progress=progress, cancel=flag)
    assert seen and max(seen) < 1.0
    flag.clear()
    assert session.segment(Prompt(text="liver"))[0].mask.shape == volume.geometry.shape


def test_out_of_memory_shrinks_the_batch_and_gives_the_same_result(volume, monkeypatch):
    reference = tiny_predictor(batch_size=4).open(volume).segment(Prompt(text="liver"))[0]
    predictor = tiny_predictor(batch_size=4)
    real = predictor.model.encode_image
    failures = []

    def fragile(image):
        if image.shape[0] > 1:
            failures.append(image.shape[0])
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(image)

    monkeypatch.setattr(predictor.model, "encode_image", fragile)
    result = predictor.open(volume).segment(Prompt(text="liver"))[0]
    assert failures == [4, 2] and predictor.batch_size["encode"] == 1
    assert np.array_equal(result.mask, reference.mask)
