"""Every malformed input the command line can meet: exit code 2, one line on stderr, no traceback, nothing written.

The cases that can be decided from the input alone run with ``--model`` pointing to a file that does not
exist: if any of them got as far as loading a model, its message would be "checkpoint not found" instead of
the expected one, so these tests also prove that the checks come before any model work.
"""
from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import malformed_files as mf
import nibabel as nib
import numpy as np
import pytest
import torch
from engine_fixtures import ct_volume, tiny_model

from RefSAM3DLib.cli import main
from RefSAM3DLib.modeling.checkpoint import save_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
NEVER_LOADED = "never-loaded-model.pt"  # does not exist: reaching the model would change the message


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("malformed-base")
    volume = ct_volume(shape=(24, 20, 16))
    image = mf.nifti(folder / "ct.nii.gz", volume.array, volume.geometry.affine)
    model = folder / "tiny.pt"
    save_checkpoint(tiny_model(), model)
    centre = volume.geometry.ijk_to_ras(np.asarray([[12, 10, 8]]))[0]
    return {"folder": folder, "image": image, "model": model, "volume": volume, "centre": centre}


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def _expect_refused(argv: list[str], expected: str, capsys, watch: Path) -> str:
    """Run the CLI; check exit 2, one stderr line containing ``expected``, no traceback, no new file in ``watch``."""
    before = _files(watch)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (code, captured.err)
    assert len(lines) == 1, lines
    assert "Traceback" not in captured.err
    assert expected.lower() in lines[0].lower(), lines[0]
    assert _files(watch) == before, sorted(map(str, _files(watch) - before))
    return lines[0]


def _segment(image, out, model=NEVER_LOADED, prompt="liver", extra=()):
    argv = ["segment", "--image", str(image), "--out", str(out), "--model", str(model), "--device", "cpu", "--quiet"]
    if prompt is not None:
        argv += ["--prompt", prompt]
    return argv + list(extra)


# ---------------------------------------------------------------------------------------------- images
IMAGE_CASES = {
    "missing file": (lambda d: d / "nope.nii.gz", "no such file"),
    "not an image": (lambda d: _write(d / "text.nii.gz", b"this is not an image"), "not a readable image"),
    "empty file": (lambda d: _write(d / "empty.nii.gz", b""), ""),
    "garbage extension": (lambda d: _write(d / "scan.xyz", b"\x00" * 100), "not a readable image"),
    "truncated nii.gz": (lambda d: mf.truncated(mf.nifti(d / "t.nii.gz")), "truncated"),
    "truncated nii": (lambda d: mf.truncated(mf.nifti(d / "t.nii")), "truncated"),
    "zero pixdim nii": (lambda d: mf.nifti_with_pixdim(d / "z.nii", 0.0), "spacing"),
    "negative pixdim nii": (lambda d: mf.nifti_with_pixdim(d / "n.nii", -2.0), "spacing"),
    "nan pixdim nii": (lambda d: mf.nifti_with_pixdim(d / "n.nii", math.nan), "spacing"),
    "all-NaN nii.gz": (lambda d: mf.nifti(d / "nan.nii.gz", np.full(mf.SHAPE, np.nan, np.float32)), "NaN"),
    "some NaN nrrd": (lambda d: mf.itk_image(d / "n.nrrd", _with_nan(np.float32)), "NaN or infinite"),
    "infinite mha": (lambda d: mf.itk_image(d / "i.mha", _with_inf()), "NaN or infinite"),
    "2D nii.gz": (lambda d: mf.nifti(d / "flat.nii.gz", mf.ct_array((12, 10, 1))), "2D"),
    "4D without frame": (lambda d: mf.nifti(d / "4d.nii.gz", np.zeros((6, 5, 4, 3), np.int16)), "4D image"),
    "spacing 500 mm nrrd": (lambda d: mf.nrrd_text(d / "big.nrrd", "(500,0,0) (0,2,0) (0,0,3)"), "spacing"),
    "zero spacing nrrd": (lambda d: mf.nrrd_text(d / "z.nrrd", "(2,0,0) (0,2,0) (0,0,0)"), "spacing"),
    "truncated raw nrrd": (lambda d: mf.nrrd_text(d / "t.nrrd", keep=0.5), "truncated"),
    "truncated gzip nrrd": (lambda d: mf.nrrd_text(d / "t.nrrd", encoding="gzip", keep=0.5), "truncated"),
    "truncated compressed mha": (lambda d: mf.truncated(mf.itk_image(d / "t.mha", mf.ct_array().T, compress=True),
                                                        0.7), "truncated"),
    "truncated raw mha": (lambda d: mf.truncated(mf.itk_image(d / "t.mha", mf.ct_array().T), 0.7), "truncated"),
    "zero spacing mha": (lambda d: mf.metaimage_text(d / "z.mha", "2 0 3"), "spacing"),
    "mhd without raw": (lambda d: _mhd_without_data(d), "not a readable image"),
    "empty folder": (lambda d: _folder(d / "empty"), "empty folder"),
    "folder without DICOM": (lambda d: _write(_folder(d / "notes") / "readme.txt", b"hello").parent,
                             "no DICOM image series"),
    "DICOM missing slice": (lambda d: mf.series_missing_slice(d / "s"), "missing"),
    "DICOM truncated slice": (lambda d: mf.series_truncated_slice(d / "s"), "truncated"),
    "DICOM two series": (lambda d: mf.two_series(d / "s"), "2 DICOM series"),
    "DICOM mixed sizes": (lambda d: mf.mixed_sizes(d / "s"), "mixed series"),
    "DICOM uneven spacing": (lambda d: mf.uneven_series(d / "s"), "uneven slice spacing"),
    "DICOM tilted gantry": (lambda d: mf.tilted_series(d / "s"), "gantry tilt"),
    "DICOM duplicate slice": (lambda d: mf.duplicate_slice(d / "s"), "same position"),
    "DICOM multi-frame": (lambda d: mf.multiframe(d / "s"), "multi-frame"),
    "DICOM single slice": (lambda d: mf.single_slice(d / "s"), "2D"),
    "DICOM without positions": (lambda d: mf.without_positions(d / "s"), "ImagePositionPatient"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _with_nan(dtype) -> np.ndarray:
    array = mf.ct_array().T.astype(dtype)
    array[2, 3, 4] = np.nan
    return array


def _with_inf() -> np.ndarray:
    array = mf.ct_array().T.astype(np.float32)
    array[1, 1, 1] = np.inf
    return array


def _mhd_without_data(folder: Path) -> Path:
    path = folder / "scan.mhd"
    path.write_text("ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_SHORT\n"
                    "ElementDataFile = scan.raw\n")
    return path


@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_bad_image_is_refused_before_the_model(case, tmp_path, capsys):
    build, expected = IMAGE_CASES[case]
    image = build(tmp_path)
    _expect_refused(_segment(image, tmp_path / "out" / "seg.nii.gz"), expected, capsys, tmp_path)


def test_4d_frame_out_of_range_is_refused(tmp_path, capsys):
    image = mf.nifti(tmp_path / "4d.nii.gz", np.zeros((6, 5, 4, 3), np.int16))
    _expect_refused(_segment(image, tmp_path / "o.nii.gz", extra=["--frame", "7"]), "frame 7 does not exist",
                    capsys, tmp_path)


# ---------------------------------------------------------------------------------------------- prompts
PROMPT_CASES = {
    "empty": ("", "--prompt is empty"),
    "blank": ("   ", "--prompt is empty"),
    "escape sequence": ("\x1b[31mliver", "control characters"),
    "bell": ("liv\x07er", "control characters"),
    "too long": ("liver " * 50, "characters long"),
    "unknown words": ("xyzzy qwerty", "no structure or word"),
    "non-ASCII script": ("печень", "no structure or word"),
    "CJK": ("肝臓", "no structure or word"),
    "digits only": ("12345", "no structure or word"),
    "punctuation only": ("!!!???", "no structure or word"),
    "side only": ("left", "no structure or word"),
}


@pytest.mark.parametrize("case", list(PROMPT_CASES))
def test_bad_prompt_is_refused_before_the_model(case, base, tmp_path, capsys):
    text, expected = PROMPT_CASES[case]
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", prompt=text), expected, capsys, tmp_path)


def test_no_prompt_at_all_is_refused(base, tmp_path, capsys):
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", prompt=None), "nothing to segment", capsys,
                    tmp_path)


# ---------------------------------------------------------------------------------------------- points, boxes
CLICK_CASES = {
    "point with two values": (["--point", "1,2"], "expected R,A,S"),
    "point with five values": (["--point", "1,2,3,4,5"], "expected R,A,S"),
    "point with letters": (["--point", "a,b,c"], "must be numbers"),
    "point with a bad sign": (["--point", "1,2,3,x"], "must be + or -"),
    "point with NaN": (["--point", "nan,0,0"], "finite"),
    "point with inf": (["--point", "-inf,0,0"], "finite"),
    "point outside the volume": (["--point", "9999,0,0"], "outside the volume"),
    "negative point outside": (["--point", "-9999,-5,-5,+"], "outside the volume"),
    "box with three values": (["--box", "1,2,3"], "expected R1,A1,S1"),
    "box with letters": (["--box", "1,2,3,a,5,6"], "must be numbers"),
    "flat box": (["--box", "1,2,3,1,5,6"], "flat"),
    "box outside the volume": (["--box", "-9000,-9000,-9000,-8990,-8990,-8990"], "outside the volume"),
}


@pytest.mark.parametrize("case", list(CLICK_CASES))
def test_bad_click_is_refused_before_the_model(case, base, tmp_path, capsys):
    extra, expected = CLICK_CASES[case]
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", extra=extra), expected, capsys, tmp_path)


def test_negative_coordinates_are_values_not_options(base, tmp_path, capsys):
    """--point -52.6,... used to be read as an unknown option; now it reaches the geometry check."""
    line = _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", extra=["--point", "-5000,95.9,-256.5,+"]),
                           "outside the volume", capsys, tmp_path)
    assert "-5000" in line


# ---------------------------------------------------------------------------------------------- options
OPTION_CASES = {
    "threshold 2": (["--threshold", "2"], "--threshold 2"),
    "threshold 0": (["--threshold", "0"], "--threshold 0"),
    "threshold nan": (["--threshold", "nan"], "--threshold nan"),
    "min size -1": (["--min-size-ml", "-1"], "--min-size-ml -1"),
    "presence 1.5": (["--presence-threshold", "1.5"], "--presence-threshold 1.5"),
    "threshold not a number": (["--threshold", "high"], "invalid float value"),
    "unknown format": (["--format", "png"], "invalid choice"),
    "unknown option": (["--colour", "red"], "unrecognized arguments"),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_bad_option_is_refused_before_the_model(case, base, tmp_path, capsys):
    extra, expected = OPTION_CASES[case]
    argv = _segment(base["image"], tmp_path / "o.nii.gz", extra=extra)
    if "invalid" in expected or "unrecognized" in expected:  # argparse's own errors end the program
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines
        assert not list(tmp_path.iterdir())
        return
    _expect_refused(argv, expected, capsys, tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("command", ["segment", "batch", "train"])
def test_cuda_without_a_gpu_is_refused(command, base, tmp_path, capsys):
    if command == "segment":
        argv = _segment(base["image"], tmp_path / "o.nii.gz")
    elif command == "batch":
        argv = ["batch", "--inputs", str(base["folder"]), "--prompt", "liver", "--out", str(tmp_path / "out"),
                "--model", NEVER_LOADED, "--device", "cpu"]
    else:
        argv = ["train", "--datalist", str(tmp_path / "data.yaml"), "--out", str(tmp_path / "run"), "--device", "cpu"]
    argv[argv.index("--device") + 1] = "cuda"
    _expect_refused(argv, "no CUDA GPU", capsys, tmp_path)


# ---------------------------------------------------------------------------------------------- outputs
def test_unknown_output_extension(base, tmp_path, capsys):
    _expect_refused(_segment(base["image"], tmp_path / "seg.xyz"), "cannot tell the export format", capsys, tmp_path)


@pytest.mark.parametrize("name, fmt, expected", [("seg.dcm", "nifti", ".nii or .nii.gz"),
                                                 ("seg.nrrd", "seg.nrrd", ".seg.nrrd file name")])
def test_output_name_that_does_not_fit_the_format(name, fmt, expected, base, tmp_path, capsys):
    _expect_refused(_segment(base["image"], tmp_path / name, extra=["--format", fmt]), expected, capsys, tmp_path)


def test_dicom_seg_from_nifti_is_refused(base, tmp_path, capsys):
    _expect_refused(_segment(base["image"], tmp_path / "seg.dcm"), "needs a DICOM series", capsys, tmp_path)


def test_dicom_seg_without_frame_of_reference_is_refused(tmp_path, capsys):
    series = mf.dicom_series(tmp_path / "s")
    for path in series.files:
        mf.edit_dicom(path, FrameOfReferenceUID=None)
    _expect_refused(_segment(series.folder, tmp_path / "seg.dcm"), "FrameOfReferenceUID", capsys, tmp_path)


def test_output_folder_below_a_file(base, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("I am a file")
    _expect_refused(_segment(base["image"], blocker / "seg.nii.gz"), "is a file, not a folder", capsys, tmp_path)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (a folder no one can write to)")
def test_output_in_a_folder_nobody_can_write(base, tmp_path, capsys):
    _expect_refused(_segment(base["image"], Path("/proc/refsam3d-out/seg.nii.gz")), "cannot write", capsys, tmp_path)


def test_output_is_a_folder(base, tmp_path, capsys):
    (tmp_path / "seg.nii.gz").mkdir()
    _expect_refused(_segment(base["image"], tmp_path / "seg.nii.gz"), "is a folder", capsys, tmp_path)


@pytest.mark.parametrize("existing", ["seg.nii.gz", "seg.json", "preview.png"])
def test_existing_output_is_kept(existing, base, tmp_path, capsys):
    (tmp_path / existing).write_bytes(b"the user's own file")
    argv = _segment(base["image"], tmp_path / "seg.nii.gz", extra=["--preview", str(tmp_path / "preview.png")])
    _expect_refused(argv, "exists; pass --overwrite", capsys, tmp_path)
    assert (tmp_path / existing).read_bytes() == b"the user's own file"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root may write into read-only folders")
def test_read_only_folder(base, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _expect_refused(_segment(base["image"], locked / "seg.nii.gz"), "cannot write", capsys, tmp_path)
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------------------------------------- checkpoints
def test_truncated_checkpoint(base, tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(base["model"].read_bytes()[:5000])
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", model=broken), "truncated or corrupt", capsys,
                    tmp_path)


def test_checkpoint_with_mismatched_config(base, tmp_path, capsys):
    edited = mf.wrong_config_checkpoint(base["model"], tmp_path / "edited.pt")
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", model=edited), "do not fit together", capsys,
                    tmp_path)


def test_checkpoint_that_would_run_code_is_never_executed(base, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    evil = mf.code_checkpoint(tmp_path / "evil.pt", marker)
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", model=evil), "cannot read checkpoint", capsys,
                    tmp_path)
    assert not marker.exists()


def test_foreign_weights_are_not_a_refsam3d_checkpoint(base, tmp_path, capsys):
    foreign = mf.foreign_checkpoint(tmp_path / "sam.pt")
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", model=foreign), "not a RefSAM3D checkpoint",
                    capsys, tmp_path)


def test_text_file_as_checkpoint(base, tmp_path, capsys):
    text = tmp_path / "model.pt"
    text.write_text("weights")
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", model=text), "cannot read checkpoint", capsys,
                    tmp_path)


def test_unknown_model_name(base, tmp_path, capsys):
    _expect_refused(_segment(base["image"], tmp_path / "o.nii.gz", model="no-such-model"), "unknown model", capsys,
                    tmp_path)


# ---------------------------------------------------------------------------------------------- datalists
def _datalist(folder: Path, content) -> Path:
    path = folder / "data.yaml"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


DATALIST_CASES = {
    "missing": (None, "datalist not found"),
    "invalid YAML": ("cases: [unclosed", "not valid YAML"),
    "a list": ("- a\n- b\n", "expected a mapping"),
    "no cases": ("name: x\n", "no 'cases' list"),
    "cases not a list": ("cases: 5\n", "cases"),
    "case without label": ({"cases": [{"id": "a", "image": "ct.nii.gz"}]}, "missing 'label'"),
    "missing image file": ({"cases": [{"id": "a", "image": "nope.nii.gz", "label": "ct.nii.gz",
                                       "labels": {1: "liver"}}]}, "does not exist"),
    "bad label value": ({"cases": [{"id": "a", "image": "ct.nii.gz", "label": "ct.nii.gz",
                                    "labels": {"one": "liver"}}]}, "not an integer"),
    "bad modality": ({"cases": [{"id": "a", "image": "ct.nii.gz", "label": "ct.nii.gz", "labels": {1: "liver"},
                                 "modality": "PET"}]}, "modality must be CT or MR"),
    "duplicate ids": ({"cases": [{"id": "a", "image": "ct.nii.gz", "label": "ct.nii.gz", "labels": {1: "liver"}}] * 2},
                      "duplicate case id"),
    "a folder": ("FOLDER", "datalist"),
}


@pytest.mark.parametrize("case", list(DATALIST_CASES))
def test_bad_datalist_is_refused_before_training(case, tmp_path, capsys):
    content, expected = DATALIST_CASES[case]
    mf.nifti(tmp_path / "ct.nii.gz")
    if content is None:
        datalist = tmp_path / "missing.yaml"
    elif content == "FOLDER":
        datalist = _folder(tmp_path / "folder.yaml")
    else:
        datalist = _datalist(tmp_path, content)
    argv = ["train", "--datalist", str(datalist), "--out", str(tmp_path / "run"), "--config", "tiny", "--steps", "1",
            "--device", "cpu", "--quiet"]
    _expect_refused(argv, expected, capsys, tmp_path)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------- batch
def test_batch_with_no_scans_is_refused(tmp_path, capsys):
    argv = ["batch", "--inputs", str(_folder(tmp_path / "in")), "--prompt", "liver", "--out", str(tmp_path / "out"),
            "--model", NEVER_LOADED, "--device", "cpu", "--quiet"]
    _expect_refused(argv, "no scans found", capsys, tmp_path)


def test_batch_list_with_missing_scan_is_refused(tmp_path, capsys):
    listing = tmp_path / "scans.txt"
    listing.write_text(f"{tmp_path / 'nope.nii.gz'}\n")
    argv = ["batch", "--inputs", str(listing), "--prompt", "liver", "--out", str(tmp_path / "out"),
            "--model", NEVER_LOADED, "--device", "cpu", "--quiet"]
    _expect_refused(argv, "does not exist", capsys, tmp_path)


def test_batch_with_unknown_prompt_is_refused(base, tmp_path, capsys):
    inputs = _folder(tmp_path / "in")
    (inputs / "a.nii.gz").write_bytes(base["image"].read_bytes())
    argv = ["batch", "--inputs", str(inputs), "--prompt", "xyzzy", "--out", str(tmp_path / "out"),
            "--model", NEVER_LOADED, "--device", "cpu", "--quiet"]
    _expect_refused(argv, "no structure or word", capsys, tmp_path)


# ---------------------------------------------------------------------------------------------- with the model
def _cli_process(args: list[str], limit_bytes: int | None = None, **kwargs) -> subprocess.Popen:
    """The real `refsam3d` in its own process, optionally with a file-size limit (a disk that fills up)."""
    def limit() -> None:
        if limit_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "RefSAM3DLib.cli", *args], preexec_fn=limit, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_full_disk_leaves_nothing_behind(base, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # the bundled default model: its text model must not print a loading bar either
    process = _cli_process(["segment", "--image", str(base["image"]), "--prompt", "liver", "--out",
                            str(out / "seg.nii.gz"), "--model", "refsam3d-lite", "--device", "cpu", "--quiet"],
                           limit_bytes=64)
    _, err = process.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert process.returncode == 2, err
    assert len(lines) == 1 and "disk full" in lines[0] and "Traceback" not in err, lines
    assert list(out.iterdir()) == []


def _batch_argv(inputs: Path, out: Path, model: Path) -> list[str]:
    return ["batch", "--inputs", str(inputs), "--prompt", "liver", "--out", str(out), "--model", str(model),
            "--device", "cpu", "--quiet"]


def _assert_whole_outputs(out: Path, names: list[str]) -> None:
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(f"{n}.nii.gz" for n in names)
    for name in names:
        assert np.asarray(nib.load(out / f"{name}.nii.gz").dataobj).shape == (24, 20, 16)
        json.loads((out / f"{name}.json").read_text())
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_batch_skips_bad_cases_and_finishes_the_others(base, tmp_path, capsys):
    inputs = _folder(tmp_path / "in")
    for name in ("a", "d"):
        shutil.copy(base["image"], inputs / f"{name}.nii.gz")
    mf.truncated(mf.nifti(inputs / "b.nii.gz"))
    mf.series_missing_slice(inputs / "c")
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(_batch_argv(inputs, out, base["model"])) == 1
    err = capsys.readouterr().err
    assert "b.nii.gz: skipped:" in err and "truncated" in err
    assert f"{inputs / 'c'}: skipped:" in err and "missing" in err
    assert "2 of 4 scans failed" in err and "Traceback" not in err
    _assert_whole_outputs(out, ["a", "d"])


@pytest.mark.slow
def test_batch_killed_mid_case_resumes_to_whole_outputs(base, tmp_path, capsys):
    inputs = _folder(tmp_path / "in")
    names = [f"case{n}" for n in range(4)]
    for name in names:
        shutil.copy(base["image"], inputs / f"{name}.nii.gz")
    out = tmp_path / "out"
    process = _cli_process(_batch_argv(inputs, out, base["model"]))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and any(out.iterdir()):  # the first case is being written (or was): stop it hard
            break
        time.sleep(0.01)
    assert process.poll() is None, "the batch ended before it could be interrupted"
    process.kill()
    process.communicate(timeout=60)
    assert main(_batch_argv(inputs, out, base["model"])) == 0, capsys.readouterr().err  # the restart
    _assert_whole_outputs(out, names)


# ---------------------------------------------------------------------------------------------- in-memory volumes
@pytest.mark.parametrize("case, expected", [("nan", "NaN"), ("one slice", "2D"), ("spacing 0.0001", "spacing")])
def test_volumes_built_in_code_get_the_same_checks(case, expected, base):
    """The Slicer module builds volumes from scene nodes, not files: opening a session runs the same checks."""
    from engine_fixtures import tiny_predictor

    from RefSAM3DLib.io.errors import VolumeReadError
    from RefSAM3DLib.io.geometry import VolumeGeometry
    from RefSAM3DLib.io.volume import Volume

    array, spacing = np.zeros((8, 8, 8), np.float32), (2.0, 2.0, 2.0)
    if case == "nan":
        array[1, 2, 3] = np.nan
    elif case == "one slice":
        array = np.zeros((8, 8, 1), np.float32)
    else:
        spacing = (2.0, 2.0, 0.0001)
    volume = Volume(array, VolumeGeometry.from_spacing(array.shape, spacing), modality="CT", source="scene node")
    with pytest.raises(VolumeReadError) as error:
        tiny_predictor().open(volume)
    assert expected in str(error.value) and str(error.value).startswith("scene node: ")
