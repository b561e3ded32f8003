"""The refsam3d command line: real runs with a tiny checkpoint, and every bad-input path exits 2 in one line."""
import json

import nibabel as nib
import numpy as np
import pytest
from engine_fixtures import ct_volume, tiny_model

from RefSAM3DLib.cli import main
from RefSAM3DLib.modeling.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    volume = ct_volume()
    image = folder / "ct.nii.gz"
    nib.save(nib.Nifti1Image(volume.array, volume.geometry.affine), image)
    model = folder / "tiny.pt"
    save_checkpoint(tiny_model(), model)
    return folder, image, model, volume


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_segment_writes_mask_sidecar_and_preview(files, tmp_path, capsys):
    folder, image, model, volume = files
    out, preview = tmp_path / "seg.nii.gz", tmp_path / "preview.png"
    point = ",".join(f"{v:.2f}" for v in volume.geometry.ijk_to_ras(np.asarray([[20, 18, 15]]))[0])
    code = main(["segment", "--image", str(image), "--prompt", "liver", "--prompt", "left kidney", "--point",
                 point + ",+", "--out", str(out), "--preview", str(preview), "--model", str(model), "--device", "cpu",
                 "--presence-threshold", "0", "--quiet"])
    assert code == 0
    written = nib.load(out)
    assert written.shape == volume.geometry.shape and np.allclose(written.affine, volume.geometry.affine)
    sidecar = json.loads((tmp_path / "seg.json").read_text())
    assert "liver" in json.dumps(sidecar) and "left kidney" in json.dumps(sidecar)
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stdout = capsys.readouterr().out
    assert "liver" in stdout and "wrote" in stdout
    # an existing output is never replaced silently
    assert main(["segment", "--image", str(image), "--prompt", "liver", "--out", str(out), "--model", str(model),
                 "--quiet"]) == 2
    assert "exists; pass --overwrite" in _error_line(capsys)


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such file"),
    ("unreadable", ""),
    ("empty-prompt", "--prompt is empty"),
    ("outside", "outside the volume"),
    ("unknown-model", "unknown model"),
    ("corrupt", "truncated or corrupt"),
    ("bad-point", "--point"),
])
def test_bad_input_exits_2_with_one_line(files, tmp_path, capsys, case, expected):
    folder, image, model, volume = files
    args = {"image": str(image), "prompt": "liver", "model": str(model), "point": None}
    if case == "missing":
        args["image"] = str(tmp_path / "nope.nii.gz")
    elif case == "unreadable":
        bad = tmp_path / "bad.nii.gz"
        bad.write_bytes(b"this is not an image")
        args["image"] = str(bad)
    elif case == "empty-prompt":
        args["prompt"] = "  "
    elif case == "outside":
        args["point"] = "9999,0,0"
    elif case == "unknown-model":
        args["model"] = "no-such-model"
    elif case == "corrupt":
        corrupt = tmp_path / "corrupt.pt"
        corrupt.write_bytes(model.read_bytes()[:1000])
        args["model"] = str(corrupt)
    elif case == "bad-point":
        args["point"] = "1,2"
    argv = ["segment", "--image", args["image"], "--prompt", args["prompt"], "--out", str(tmp_path / "o.nii.gz"),
            "--model", args["model"], "--device", "cpu", "--quiet"]
    if args["point"]:
        argv += ["--point", args["point"]]
    assert main(argv) == 2
    line = _error_line(capsys)
    assert line.startswith("refsam3d segment: error:") and expected in line
    assert not (tmp_path / "o.nii.gz").exists()


def test_model_info_last_line(capsys):
    assert main(["model-info", "--config", "tiny"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("total=") and " trainable=" in last


def test_batch_is_resumable(files, tmp_path, capsys):
    folder, image, model, volume = files
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        (inputs / f"{name}.nii.gz").write_bytes(image.read_bytes())
    out = tmp_path / "out"
    argv = ["batch", "--inputs", str(inputs), "--prompt", "liver", "--out", str(out), "--model", str(model),
            "--device", "cpu", "--quiet"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["a.nii.gz", "b.nii.gz"]
    stamp = (out / "a.nii.gz").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "a.nii.gz").stat().st_mtime_ns == stamp
    assert "2 already done" in capsys.readouterr().err
