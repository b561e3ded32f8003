"""Training on the CPU with the tiny config: the loss falls, resume is exact, DDP ranks agree, data errors are clear."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from training_fixtures import write_small_dataset

from RefSAM3DLib.training.case_cache import prepare_case
from RefSAM3DLib.training.datalist import load_datalist
from RefSAM3DLib.training.errors import DatasetError
from RefSAM3DLib.training.trainer import STATE_FILE, TrainConfig, train


@pytest.fixture(scope="module")
def datalist(shared_data, tmp_path_factory):
    return write_small_dataset(shared_data, tmp_path_factory.mktemp("data"))


def _config(datalist, out, **changes) -> TrainConfig:
    base = dict(datalist=str(datalist), out_dir=str(out), model_config="tiny", steps=4, batch_size=2, lr=1e-3,
                warmup_steps=1, checkpoint_every=2, epoch_length=8, seed=3, threads=1,
                cache_dir=str(out.parent / "cache"))
    base.update(changes)
    return TrainConfig(**base)


@pytest.mark.slow
def test_a_few_steps_reduce_the_loss(datalist, tmp_path):
    torch.manual_seed(0)
    cfg = _config(datalist, tmp_path / "run", steps=40, epoch_length=4, augment=False, corrective_probability=0.0,
                  lr=2e-3, checkpoint_every=100)
    from RefSAM3DLib.training import trainer

    losses = []
    original = trainer.TrainingObjective.forward

    def recording(self, items, seed):
        out = original(self, items, seed)
        losses.append(float(out["total"].detach()))
        return out

    trainer.TrainingObjective.forward = recording
    try:
        train(cfg, progress=False)
    finally:
        trainer.TrainingObjective.forward = original
    assert np.mean(losses[-8:]) < np.mean(losses[:8]) * 0.85
    assert (tmp_path / "run" / "model_last.pt").is_file()


@pytest.mark.slow
def test_resume_continues_exactly(datalist, tmp_path):
    straight = train(_config(datalist, tmp_path / "straight"), progress=False)
    first = _config(datalist, tmp_path / "resumed", stop_at=2)  # "interrupted" after 2 of 4 steps
    train(first, progress=False)
    assert torch.load(tmp_path / "resumed" / STATE_FILE, weights_only=False)["step"] == 2
    resumed = train(_config(datalist, tmp_path / "resumed"), progress=False)
    assert straight["steps"] == resumed["steps"] == 4
    a = torch.load(tmp_path / "straight" / STATE_FILE, weights_only=False)
    b = torch.load(tmp_path / "resumed" / STATE_FILE, weights_only=False)
    assert a["step"] == b["step"] == 4
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert json.loads((tmp_path / "straight" / "rank_digests.json").read_text()) == \
        json.loads((tmp_path / "resumed" / "rank_digests.json").read_text())


@pytest.mark.slow
def test_two_process_gloo_ddp_ends_with_identical_weights(datalist, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "RefSAM3DLib.commands.train", "--datalist", str(datalist), "--out", str(out), "--config", "tiny",
           "--steps", "3", "--batch-size", "1", "--epoch-length", "8", "--checkpoint-every", "3", "--device", "cpu",
           "--threads", "1", "--quiet", "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    digests = json.loads((out / "rank_digests.json").read_text())
    assert len(digests) == 2 and digests[0] == digests[1]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["steps"] == 3


@pytest.mark.slow
def test_few_shot_fine_tuning_from_a_checkpoint(datalist, tmp_path):
    train(_config(datalist, tmp_path / "base", steps=2), progress=False)
    summary = train(_config(datalist, tmp_path / "fewshot", init=str(tmp_path / "base" / "model_last.pt"), shots=1,
                            steps=2), progress=False)
    assert summary["steps"] == 2


def test_preprocessing_is_cached_and_matches_the_engine_grid(datalist, tmp_path):
    case = load_datalist(datalist).cases[0]
    first = prepare_case(case, (4.0, 4.0, 4.0), (0.5, 99.5), tmp_path)
    again = prepare_case(case, (4.0, 4.0, 4.0), (0.5, 99.5), tmp_path)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.label, again.label)
    assert len(list(tmp_path.iterdir())) == 1
    assert set(first.names.values()) == {"spleen", "kidney_left", "liver"}


def _datalist_with(tmp_path, datalist, **changes):
    data = yaml.safe_load(datalist.read_text())
    data["root"] = str(datalist.parent)
    data["cases"][0].update(changes)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bad_datalists_fail_with_the_file_named(datalist, tmp_path):
    with pytest.raises(DatasetError, match="missing.nii.gz.*does not exist"):
        load_datalist(_datalist_with(tmp_path, datalist, image="missing.nii.gz"))
    bad = _datalist_with(tmp_path, datalist, labels={1: "spleen", 7: "aorta"})
    with pytest.raises(DatasetError, match=r"seg.nii.gz: label value\(s\) \[7\].*do not occur"):
        prepare_case(load_datalist(bad).cases[0], (4.0, 4.0, 4.0), (0.5, 99.5), None)
    import nibabel as nib

    img = nib.load(datalist.parent / "seg.nii.gz")
    shifted = nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.diag([1, 1, 2, 1]))
    nib.save(shifted, tmp_path / "shifted.nii.gz")
    bad = _datalist_with(tmp_path, datalist, label=str(tmp_path / "shifted.nii.gz"))
    with pytest.raises(DatasetError, match="does not match the image"):
        prepare_case(load_datalist(bad).cases[0], (4.0, 4.0, 4.0), (0.5, 99.5), None)
    (tmp_path / "broken.yaml").write_text("cases: [unclosed")
    with pytest.raises(DatasetError, match="broken.yaml: not valid YAML"):
        load_datalist(tmp_path / "broken.yaml")


def test_evaluate_command_writes_csv_table_and_boxplot(datalist, tmp_path, capsys):
    from engine_fixtures import tiny_model

    from RefSAM3DLib.cli import main
    from RefSAM3DLib.evaluation.report import read_metrics_csv
    from RefSAM3DLib.modeling.checkpoint import save_checkpoint

    model = tmp_path / "tiny.pt"
    save_checkpoint(tiny_model(), model)
    out = tmp_path / "eval"
    code = main(["evaluate", "--datalist", str(datalist), "--split", "val", "--model", str(model), "--device", "cpu",
                 "--out", str(out), "--absent-prompts", "2", "--quiet"])
    assert code == 0
    rows = read_metrics_csv(out / "metrics.csv")
    structures = {r.structure for r in rows}
    assert {"spleen", "kidney_left", "liver"} <= structures
    assert sum(r.structure.startswith("absent: ") for r in rows) == 2
    assert all(0.0 <= r.dice <= 1.0 for r in rows)
    assert (out / "dice_boxplot.png").read_bytes()[:4] == b"\x89PNG"
    assert "liver" in (out / "report.md").read_text()
