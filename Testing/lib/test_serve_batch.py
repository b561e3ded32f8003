"""`refsam3d batch --server`: cases spread over two real server processes on loopback give the same files a local
batch writes, a rerun skips what is done, a damaged case fails alone, and a server that stops answering hands its
cases to the others."""
from __future__ import annotations

import socket
import threading

import nibabel as nib
import numpy as np
import pytest
from engine_fixtures import ct_volume, tiny_model
from server_process import ServerProcess, save_model

from RefSAM3DLib.cli import main
from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.serving.client import ServerClient
from RefSAM3DLib.serving.dispatch import run_on_servers

ANSWER = ["--presence-threshold", "0", "--min-size-ml", "0", "--threshold", "0.5", "--quiet"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch-cases")
    inputs = folder / "inputs"
    inputs.mkdir()
    for index, shape in enumerate([(24, 20, 16), (20, 24, 18), (22, 18, 20)]):
        volume = ct_volume(shape=shape, seed=index)
        nib.save(nib.Nifti1Image(volume.array, volume.geometry.affine), inputs / f"case{index}.nii.gz")
    return folder, inputs, save_model(tiny_model(), folder / "tiny.pt")


@pytest.fixture(scope="module")
def servers(cases):
    processes = [ServerProcess(cases[2], "--no-anatomy-prior") for _ in range(2)]
    starters = [threading.Thread(target=p.start) for p in processes]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    yield processes
    for process in processes:
        process.stop()


def dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_batch_on_two_servers_matches_a_local_batch_and_resumes(cases, servers, tmp_path, capsys):
    folder, inputs, model = cases
    remote_out, local_out = tmp_path / "remote", tmp_path / "local"
    argv = ["batch", "--inputs", str(inputs), "--prompt", "liver", *ANSWER]
    assert main([*argv, "--out", str(remote_out), "--server", servers[0].url, "--server", servers[1].url]) == 0
    log = capsys.readouterr().err
    assert "found liver" in log and servers[0].url in log and servers[1].url in log
    assert main([*argv, "--out", str(local_out), "--model", str(model), "--device", "cpu",
                 "--no-anatomy-prior"]) == 0
    for index in range(3):
        remote = nib.load(remote_out / f"case{index}.nii.gz")
        local = nib.load(local_out / f"case{index}.nii.gz")
        np.testing.assert_array_equal(np.asarray(remote.dataobj), np.asarray(local.dataobj))
        assert np.allclose(remote.affine, local.affine)
    capsys.readouterr()
    assert main([*argv, "--out", str(remote_out), "--server", servers[0].url]) == 0  # resumed: nothing left to do
    assert "3 already done" in capsys.readouterr().err


def test_a_damaged_case_fails_alone(cases, servers, tmp_path, capsys):
    folder, inputs, _ = cases
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "broken.nii.gz").write_bytes(b"this is not a NIfTI file")
    (mixed / "case0.nii.gz").write_bytes((inputs / "case0.nii.gz").read_bytes())
    code = main(["batch", "--inputs", str(mixed), "--prompt", "liver", "--out", str(tmp_path / "out"),
                 "--server", servers[0].url, *ANSWER])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.nii.gz: skipped:" in err and (tmp_path / "out" / "case0.nii.gz").is_file()


def test_a_server_that_stops_answering_hands_its_cases_to_the_others(servers):
    volumes = [ct_volume(shape=(16, 14, 12), seed=s) for s in range(3)]
    clients = [ServerClient(dead_url()), ServerClient(servers[1].url)]

    def work(client, volume):
        remote = client.open(volume)
        result, = remote.segment(Prompt(text="liver"), presence_threshold=0.0)
        assert result.mask.shape == volume.array.shape
        return "ok"

    outcomes = run_on_servers(volumes, clients, work, lambda outcome: None)
    assert sorted(id(o.case) for o in outcomes) == sorted(id(v) for v in volumes)
    assert all(o.ok and o.server == servers[1].url for o in outcomes)


def test_no_reachable_server_is_one_line(cases, tmp_path, capsys):
    _, inputs, _ = cases
    code = main(["batch", "--inputs", str(inputs), "--prompt", "liver", "--out", str(tmp_path / "out"),
                 "--server", dead_url(), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("refsam3d batch: error: none of the --server addresses answered")
