"""The worker keeps one thread, one model and the volume's window embeddings between prompts."""
import threading

import pytest

pytest.importorskip("slicer")


def open_session(logic, volume):
    from RefSAM3DSlicerLib.mrml_adapter import volume_fingerprint

    return logic.worker.session(logic.worker.session_key(volume_fingerprint(volume), None))


@pytest.mark.parametrize("synchronous", [True, False])
def test_second_prompt_on_the_same_volume_skips_the_encoder(make_logic, make_volume, make_segmentation,
                                                            monkeypatch, synchronous):
    from RefSAM3DSlicerLib import mrml_adapter

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic(synchronous=synchronous)
    logic.segment(volume, segmentation, text="liver")
    session = open_session(logic, volume)
    encoded = session.encoded_windows
    assert encoded > 0 and logic.worker.sessions_opened == 1

    copies = []
    original = mrml_adapter.volume_from_node
    monkeypatch.setattr(mrml_adapter, "volume_from_node", lambda *a, **k: copies.append(1) or original(*a, **k))
    logic.segment(volume, segmentation, text="spleen")
    assert open_session(logic, volume) is session
    assert session.encoded_windows == encoded, "the encoder ran again on an unchanged volume"
    assert logic.worker.sessions_opened == 1
    assert copies == [], "the voxels were copied again although the worker had them"


def test_changed_voxels_open_a_new_session(make_logic, make_volume, make_segmentation):
    import slicer

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic()
    logic.segment(volume, segmentation, text="liver")
    first = open_session(logic, volume)
    from RefSAM3DSlicerLib.mrml_adapter import volume_fingerprint

    old_key = logic.worker.session_key(volume_fingerprint(volume), None)
    slicer.util.updateVolumeFromArray(volume, slicer.util.arrayFromVolume(volume) + 7)
    logic.segment(volume, segmentation, text="liver")
    second = open_session(logic, volume)
    assert second is not None and second is not first
    assert logic.worker.sessions_opened == 2
    assert second.encoded_windows > 0
    assert logic.worker.session(old_key) is None  # the stale embeddings were dropped (max_sessions=1)


def test_model_work_runs_on_one_persistent_thread(make_logic, make_volume, make_segmentation):
    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic(synchronous=False)
    threads = set()
    for text in ("liver", "spleen", "left kidney"):
        logic.segment(volume, segmentation, text=text,
                      progress_callback=lambda *_: None)
        threads.add(logic.worker.submit(threading.get_ident).result())
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_changing_the_model_reloads_it_and_drops_sessions(tiny_predictor, make_volume, make_segmentation):
    from RefSAM3DSlicerLib import ModelWorker, RefSAM3DLogic, RefSAM3DSettings

    loads = []

    def factory(model, device):
        loads.append((model, device))
        return tiny_predictor

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = RefSAM3DLogic(ModelWorker(factory, synchronous=True),
                          settings=RefSAM3DSettings(model="a", device="cpu", presence_threshold=0.0))
    logic.segment(volume, segmentation, text="liver")
    logic.segment(volume, segmentation, text="liver")
    assert loads == [("a", "cpu")]
    logic.apply_settings(RefSAM3DSettings(model="b", device="cpu", presence_threshold=0.0), persist=False)
    logic.segment(volume, segmentation, text="liver")
    assert loads == [("a", "cpu"), ("b", "cpu")]
    assert logic.worker.sessions_opened == 2
    logic.release_model()
    assert logic.worker.device_description == "not loaded"


def test_click_refinement_reuses_the_models_own_probability(make_logic, make_volume, make_segmentation, scene):
    from RefSAM3DLib.engine.session import SegmentResult

    volume = make_volume("ras")
    segmentation = make_segmentation(volume)
    logic = make_logic()
    target = logic.segment(volume, segmentation, text="liver").added_segment_ids[0]
    previous = logic._replacement_context(segmentation, target, volume)
    assert isinstance(previous, SegmentResult)  # untouched since: the model's probability map
    import numpy as np
    import slicer

    written = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, target, volume)
    assert written.any()
    np.testing.assert_array_equal(previous.mask, written.transpose(2, 1, 0) > 0)  # and its whole mask, for engines
    # that refine from the previous mask

    edited = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, target, volume)
    edited[0, 0, 0] = 1 - edited[0, 0, 0]
    slicer.util.updateSegmentBinaryLabelmapFromArray(edited, segmentation, target, volume)
    previous = logic._replacement_context(segmentation, target, volume)
    assert not isinstance(previous, SegmentResult)  # edited by hand: refine what is in the scene now
    assert previous.shape == tuple(reversed(edited.shape))
