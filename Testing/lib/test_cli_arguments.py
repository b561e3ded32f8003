"""Command-line values: negative coordinates are values, not options, and a click given that way segments."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from engine_fixtures import ct_volume, tiny_model

from RefSAM3DLib.cli import main
from RefSAM3DLib.commands.arguments import UsageError, join_negative_values, parse_box, parse_point
from RefSAM3DLib.modeling.checkpoint import save_checkpoint


@pytest.mark.parametrize("argv, joined", [
    (["--point", "-52.6,95.9,-256.5,+"], ["--point=-52.6,95.9,-256.5,+"]),
    (["--box", "-1,-2,-3,4,5,6"], ["--box=-1,-2,-3,4,5,6"]),
    (["--point", "-.5,1,2"], ["--point=-.5,1,2"]),
    (["--point", "-inf,0,0"], ["--point=-inf,0,0"]),
    (["--point", "12,-30,40", "--quiet"], ["--point", "12,-30,40", "--quiet"]),
    (["--point", "--quiet"], ["--point", "--quiet"]),  # a real option stays an option (argparse reports it)
    (["--prompt", "-liver"], ["--prompt", "-liver"]),
])
def test_join_negative_values(argv, joined):
    assert join_negative_values(argv) == joined


def test_parse_point_and_box_with_negative_values():
    assert parse_point("-52.6,95.9,-256.5,+") == ((-52.6, 95.9, -256.5), True)
    assert parse_point("-1,-2,-3,-") == ((-1.0, -2.0, -3.0), False)
    assert parse_box("-60,-20,30,10,40,95") == ((-60.0, -20.0, 30.0), (10.0, 40.0, 95.0))
    with pytest.raises(UsageError, match="finite"):
        parse_point("1e400,0,0")


def test_a_click_with_negative_coordinates_segments(tmp_path, capsys):
    volume = ct_volume(shape=(24, 20, 16))
    image = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(volume.array, volume.geometry.affine), image)
    model = tmp_path / "tiny.pt"
    save_checkpoint(tiny_model(), model)
    point = volume.geometry.ijk_to_ras(np.asarray([[12.0, 10.0, 6.0]]))[0]  # inside the body
    assert (point < 0).all()
    text = ",".join(f"{v:.1f}" for v in point) + ",+"
    out = tmp_path / "seg.nii.gz"
    code = main(["segment", "--image", str(image), "--point", text, "--out", str(out), "--model", str(model),
                 "--device", "cpu", "--quiet", "--presence-threshold", "0"])
    assert code == 0, capsys.readouterr().err
    assert nib.load(out).shape == volume.array.shape


def test_no_anatomy_prior_leaves_text_to_the_network(tmp_path, capsys):
    """On a CT the reference fits, a guided organ stays inside its registered box; switched off, the network alone
    answers (here a random tiny network, so the two masks differ)."""
    from RefSAM3DLib.commands.demo import sample_ct_path

    model = tmp_path / "tiny.pt"
    save_checkpoint(tiny_model(), model)
    masks = {}
    for flag in ([], ["--no-anatomy-prior"]):
        out = tmp_path / f"seg{len(flag)}.nii.gz"
        code = main(["segment", "--image", str(sample_ct_path()), "--prompt", "left kidney", "--out", str(out),
                     "--model", str(model), "--device", "cpu", "--quiet", "--presence-threshold", "0", *flag])
        assert code == 0, capsys.readouterr().err
        masks[bool(flag)] = np.asarray(nib.load(out).dataobj) > 0
    guided, alone = masks[False], masks[True]
    assert guided.any() and not np.array_equal(guided, alone)
    labels = np.asarray(nib.load(str(sample_ct_path()).replace(".nii.gz", "_labels.nii.gz")).dataobj)
    truth = np.argwhere(labels == 3)  # the sample CT is the reference itself: its left kidney label
    found = np.argwhere(guided)
    grow = 30.0 / 3.0  # voxels: two coarse model voxels of the tiny model, on a 3 mm grid
    assert (found.min(0) >= truth.min(0) - grow).all() and (found.max(0) <= truth.max(0) + grow).all()
