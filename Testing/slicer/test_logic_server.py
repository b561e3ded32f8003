"""The panel's Logic computing on a RefSAM3D server: a real `refsam3d serve` process on loopback with the same tiny
model as the local tests, real HTTP, a real MRML scene. The click loop, undo, batch and export give what they give
locally; a server error is one line and leaves the scene as it was, also when the server dies mid-prompt; after a
server restart the volume is uploaded again and the loop goes on."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer")
pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from server_process import ServerProcess, save_model  # noqa: E402

TOKEN = "slicer-test-token-0123456789"


@pytest.fixture(scope="module")
def served_model(tiny_predictor, tmp_path_factory):
    """The local tests' tiny model, as a checkpoint the server loads: both sides compute with the same weights."""
    return save_model(tiny_predictor.model, tmp_path_factory.mktemp("slicer-serve") / "tiny.pt")


@pytest.fixture(scope="module")
def server(served_model):
    process = ServerProcess(served_model)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def make_server_logic(partial_threshold):
    from RefSAM3DSlicerLib import ModelWorker, RefSAM3DLogic, RefSAM3DSettings

    created = []

    def build(url: str, token: str = "", synchronous: bool = True, max_sessions: int = 1):
        settings = RefSAM3DSettings(compute="server", server_url=url, server_token=token, presence_threshold=0.0,
                                    threshold=partial_threshold)
        logic = RefSAM3DLogic(worker=ModelWorker(synchronous=synchronous, max_sessions=max_sessions),
                              settings=settings)
        created.append(logic)
        return logic

    yield build
    for logic in created:
        logic.shutdown()


def voxels(segmentation, segment_id, volume):
    import slicer

    return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume).copy()


def ras(volume, ijk):
    from RefSAM3DSlicerLib.mrml_adapter import world_ijk_to_ras

    return tuple((world_ijk_to_ras(volume) @ np.array([*ijk, 1.0]))[:3])


def large_volume(name="large CT"):
    """Large enough that a text prompt keeps the tiny model busy for a few seconds."""
    import slicer

    rng = np.random.default_rng(5)
    array = rng.normal(40, 15, (180, 220, 240)).astype(np.int16)
    return slicer.util.addVolumeFromArray(array, np.diag([2.0, 2.0, 2.0, 1.0]), name=name)


@pytest.fixture
def local_logic(served_model, partial_threshold):
    """The Logic computing here, with the model loaded from the file the server loads: one model on both sides."""
    from RefSAM3DSlicerLib import ModelWorker, RefSAM3DLogic, RefSAM3DSettings

    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor

    loaded = RefSAM3DPredictor.from_pretrained(served_model, device="cpu", presence_threshold=0.0)
    logic = RefSAM3DLogic(worker=ModelWorker(lambda model, device: loaded),
                          settings=RefSAM3DSettings(model="tiny-test", device="cpu", presence_threshold=0.0,
                                                    threshold=partial_threshold))
    yield logic
    logic.shutdown()


def test_text_click_and_undo_on_the_server_equal_the_local_run(server, local_logic, make_server_logic, make_volume,
                                                                make_segmentation):
    from RefSAM3DSlicerLib.interaction import InteractiveLoop

    volume = make_volume("oblique")
    here = local_logic
    runs = {}
    for where, logic in (("local", here), ("server", make_server_logic(server.url, "", False))):
        segmentation = make_segmentation(volume, f"{where} segmentation")
        loop = InteractiveLoop(logic)
        loop.start_text(volume, segmentation, "left kidney")
        loop.wait()
        segment_id = loop.current.segment_id
        states = [voxels(segmentation, segment_id, volume)]
        for ijk, positive in (((14, 11, 8), True), ((3, 4, 2), False)):
            loop.add_click(volume, segmentation, ras(volume, ijk), positive)
            loop.wait()
            states.append(voxels(segmentation, segment_id, volume))
        assert not any(r.error for r in loop.reports), [r.message for r in loop.reports]
        assert segmentation.GetSegmentation().GetNumberOfSegments() == 1 and loop.current.segment_id == segment_id
        loop.undo()
        np.testing.assert_array_equal(voxels(segmentation, segment_id, volume), states[1])
        loop.undo()
        np.testing.assert_array_equal(voxels(segmentation, segment_id, volume), states[0])
        runs[where] = (states, loop, logic, segmentation)
    for local, remote in zip(runs["local"][0], runs["server"][0]):
        assert 0 < local.sum() < local.size
        np.testing.assert_array_equal(remote, local)
    loop, logic, segmentation = runs["server"][1:]
    assert "on server http://127.0.0.1" in loop.reports[0].message
    assert logic.worker.sessions_opened == 1  # uploaded once; every click went to the same remote session
    name = segmentation.GetSegmentation().GetNthSegment(0).GetName()
    assert name == "left kidney"


def test_batch_and_export_through_the_server(server, make_server_logic, make_volume, scene, tmp_path):
    import nibabel as nib
    from RefSAM3DSlicerLib.batch import BatchRun, volume_sources
    from RefSAM3DSlicerLib.export import export_segmentation, output_path

    volumes = [make_volume("ras", seed=0, name="CT one"), make_volume("lps", seed=1, name="CT two")]
    outcome = BatchRun(make_server_logic(server.url), volume_sources(volumes), text="liver").run()
    assert [name for name, _, _ in outcome.done] == ["CT one", "CT two"] and not outcome.failed
    segmentation = outcome.done[1][1]
    path = output_path(tmp_path, segmentation, "nifti")
    export_segmentation(path, segmentation, volumes[1])
    labels = np.asarray(nib.load(path).dataobj)
    written = voxels(segmentation, segmentation.GetSegmentation().GetNthSegmentID(0), volumes[1]).transpose(2, 1, 0)
    np.testing.assert_array_equal(labels > 0, written > 0)


def test_server_errors_are_one_line_and_change_nothing(served_model, make_server_logic, make_volume,
                                                       make_segmentation, snapshot, tmp_path):
    from RefSAM3DSlicerLib import InputError
    from RefSAM3DSlicerLib.interaction import InteractiveLoop

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    guarded = ServerProcess(served_model, "--token-file", str(token_file))
    guarded.start()
    try:
        volume = make_volume("ras")
        segmentation = make_segmentation(volume)
        before = snapshot(segmentation, volume)
        loop = InteractiveLoop(make_server_logic(guarded.url, "wrong-token-0123456789"))
        loop.start_text(volume, segmentation, "liver")
        loop.wait()
        report = loop.reports[-1]
        assert report.error and "refused the token (HTTP 401)" in report.message and "\n" not in report.message
        assert "wrong-token" not in report.message
        snapshot.same(before, snapshot(segmentation, volume))
        logic = make_server_logic(guarded.url, TOKEN)
        assert "model" in logic.check_server().result(30)
        assert logic.segment(volume, segmentation, text="liver").added_segment_ids  # the right token works
        with pytest.raises(InputError, match="enter the RefSAM3D server's address"):
            make_server_logic("").segment(volume, segmentation, text="liver")
        assert TOKEN not in guarded.log
        scene_file = tmp_path / "scene.mrml"
        volume.GetScene().SetURL(str(scene_file))
        volume.GetScene().Commit()
        assert scene_file.is_file() and TOKEN not in scene_file.read_text(errors="replace")  # settings, not the scene
        assert TOKEN not in repr(logic.settings) and TOKEN not in repr(logic.compute_target())
    finally:
        guarded.stop()


def test_a_restarted_server_gets_the_volume_again_cancel_reaches_it_and_a_killed_one_changes_nothing(
        served_model, make_server_logic, make_volume, make_segmentation, snapshot):
    """Restarted (it knows no sessions): the next click uploads the volume again and refines the segment from its
    mask; undo still works. Cancelled: the server stops too. Killed mid-prompt: the step fails in one line and the
    scene stays as it was."""
    from RefSAM3DSlicerLib.interaction import InteractiveLoop
    from RefSAM3DSlicerLib.mrml_adapter import volume_fingerprint

    from RefSAM3DLib.serving.client import ServerClient

    process = ServerProcess(served_model)
    process.start()
    try:
        logic = make_server_logic(process.url, synchronous=False)
        loop = InteractiveLoop(logic)
        volume = make_volume("ras")
        segmentation = make_segmentation(volume)
        loop.start_text(volume, segmentation, "liver")
        loop.wait()
        segment_id = loop.current.segment_id
        first = voxels(segmentation, segment_id, volume)

        process.restart()  # same port, no sessions
        loop.add_click(volume, segmentation, ras(volume, (3, 4, 2)), positive=False)
        loop.wait()
        assert not loop.reports[-1].error, loop.reports[-1].message
        remote = logic.worker.session(logic.worker.session_key(volume_fingerprint(volume), None))
        assert remote.uploads == 2  # uploaded again without the user doing anything
        assert segmentation.GetSegmentation().GetNumberOfSegments() == 1 and loop.current.segment_id == segment_id
        loop.undo()
        np.testing.assert_array_equal(voxels(segmentation, segment_id, volume), first)

        large = large_volume()
        other = make_segmentation(large, "large segmentation")
        before = snapshot(segmentation, volume), snapshot(other, large)

        def start_and_wait_for_the_server():
            loop.new_object()
            loop.start_text(large, other, "liver")
            deadline = time.monotonic() + 60
            while not loop.progress[1].startswith("server:"):  # the server is segmenting
                assert loop.busy and time.monotonic() < deadline, loop.progress
                time.sleep(0.02)

        start_and_wait_for_the_server()
        loop.cancel()  # reaches the server, which stops at its next batch
        loop.wait()
        assert "Cancelled" in loop.reports[-1].message and not loop.reports[-1].error
        assert ServerClient(process.url).info()["stats"]["cancelled"] == 1
        snapshot.same(before[1], snapshot(other, large))

        start_and_wait_for_the_server()
        process.kill()
        loop.wait()
        report = loop.reports[-1]
        assert report.error and "\n" not in report.message
        assert "closed the connection" in report.message or "cannot reach" in report.message  # mid-request or on retry
        snapshot.same(before[0], snapshot(segmentation, volume))
        snapshot.same(before[1], snapshot(other, large))
        assert not logic.busy and logic.undo_stack.newest is not None  # the earlier steps can still be undone
    finally:
        process.stop()
