"""Behaviour that matters: identity adapters, SAM-equivalent patch embedding, gradients, prompts."""
import pytest
import torch

from RefSAM3DLib.modeling.config import get_config
from RefSAM3DLib.modeling.prompt_encoder import POSITIVE
from RefSAM3DLib.modeling.refsam3d import RefSAM3D


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return RefSAM3D(get_config("tiny")).eval()


def _randomise_heads(model):
    """Give zero-initialised parts non-zero weights so behaviour tests see a non-trivial network."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("text_encoder") and p.dim() >= 1 and p.abs().sum() == 0 and "bias" not in name:
                p.normal_(0, 0.05)
    return model


def test_identical_slices_give_sams_2d_patch_embedding():
    segment_anything = pytest.importorskip("segment_anything")
    sam_patch = segment_anything.modeling.image_encoder.PatchEmbed(kernel_size=(16, 16), stride=(16, 16),
                                                                   in_chans=3, embed_dim=768)
    from RefSAM3DLib.modeling.patch_embed import PatchEmbed3D

    ours = PatchEmbed3D(1, 768, 16)
    with torch.no_grad():
        ours.in_plane.weight.copy_(sam_patch.proj.weight.sum(1, keepdim=True)[:, :, None])
        ours.in_plane.bias.copy_(sam_patch.proj.bias)
    slice2d = torch.randn(1, 1, 64, 48)
    volume = slice2d[:, :, None].expand(1, 1, 32, 64, 48).contiguous()
    with torch.no_grad():
        sam_tokens = sam_patch(slice2d.expand(1, 3, 64, 48))  # (1, 4, 3, 768), channels-last
        in_plane = ours.in_plane(volume)  # (1, 768, 32, 4, 3)
        full = ours(volume)  # (1, 2, 4, 3, 768)
    for k in range(32):
        torch.testing.assert_close(in_plane[0, :, k].permute(1, 2, 0), sam_tokens[0], rtol=1e-4, atol=1e-4)
    for d in range(2):  # the depthwise conv starts as a slice average -> SAM's embedding again
        torch.testing.assert_close(full[0, d], sam_tokens[0], rtol=1e-4, atol=1e-4)


def test_untrained_adapters_are_identity(tiny):
    cfg = tiny.config
    x = torch.randn(1, *cfg.token_grid, cfg.embed_dim)
    block = tiny.image_encoder.blocks[0]
    with torch.no_grad():
        assert torch.equal(block.adapter(x), x)
        block.adapter.up.weight.normal_()
        assert not torch.equal(block.adapter(x), x)
        block.adapter.up.weight.zero_()


def test_frozen_parameters_get_no_gradient_and_trainable_ones_do():
    torch.manual_seed(0)
    model = _randomise_heads(RefSAM3D(get_config("tiny")))
    cfg = model.config
    image = torch.randn(1, 1, *cfg.window_size)
    coords = torch.tensor([[[10.0, 12.0, 14.0]]])
    labels = torch.tensor([[POSITIVE]])
    mask_input = torch.randn(1, 1, *(4 * g for g in cfg.token_grid))
    out = model(image, ["liver"], coords=coords, labels=labels, mask_input=mask_input)
    (out.logits.mean() + out.presence_logits.mean()).backward()
    frozen = {f"image_encoder.{n}" for n in model.image_encoder.frozen_parameter_names()}
    for name, p in model.named_parameters():
        if name in frozen or name.startswith("text_encoder."):
            assert not p.requires_grad and p.grad is None, name
        elif name in ("no_text_word", "no_text_sentence", "prompt_encoder.no_mask_embed.weight",
                      "prompt_encoder.point_embeddings.0.weight", "prompt_encoder.point_embeddings.2.weight",
                      "prompt_encoder.point_embeddings.3.weight", "prompt_encoder.not_a_point_embed.weight"):
            continue  # not on this prompt's path (no "no text", a mask is given, one positive click)
        else:
            assert p.requires_grad, name
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "adapter" in n and p.grad is not None)


def test_a_different_text_prompt_changes_the_logits(tiny):
    model = _randomise_heads(tiny)
    image = torch.randn(1, 1, *model.config.window_size)
    with torch.no_grad():
        a = model(image, ["liver"]).logits
        b = model(image, ["left kidney"]).logits
        a2 = model(image, ["liver"]).logits
    assert torch.equal(a, a2)
    assert (a - b).abs().max() > 1e-3


def test_adding_a_point_changes_the_logits_near_it(tiny):
    model = _randomise_heads(tiny)
    cfg = model.config
    image = torch.randn(1, 1, *cfg.window_size)
    point = torch.tensor([[[8.0, 20.0, 12.0]]])
    with torch.no_grad():
        base = model(image, ["liver"]).logits
        clicked = model(image, ["liver"], coords=point, labels=torch.tensor([[POSITIVE]])).logits
        negative = model(image, ["liver"], coords=point, labels=torch.tensor([[0]])).logits
    d, h, w = (int(v) for v in point[0, 0])
    near = (slice(None), slice(None), slice(d - 2, d + 3), slice(h - 2, h + 3), slice(w - 2, w + 3))
    assert (clicked[near] - base[near]).abs().mean() > 1e-3
    assert (clicked[near] - negative[near]).abs().mean() > 1e-3


def test_point_encoding_matches_dense_encoding_at_token_centre(tiny):
    pe = tiny.prompt_encoder
    cfg = tiny.config
    p = cfg.patch_size
    token = (1, 2, 3)
    centre = torch.tensor([[[t * p + p / 2 - 0.5 for t in token]]])
    point_pe = pe.pe_layer.points(centre, cfg.window_size)[0, 0]
    dense = pe.dense_pe()[0, :, token[0], token[1], token[2]]
    torch.testing.assert_close(point_pe, dense, rtol=1e-5, atol=1e-5)


def test_click_only_and_mixed_batches(tiny):
    model = _randomise_heads(tiny)
    image = torch.randn(2, 1, *model.config.window_size)
    coords = torch.tensor([[[5.0, 5.0, 5.0], [0.0, 0.0, 0.0]], [[9.0, 9.0, 9.0], [3.0, 4.0, 5.0]]])
    labels = torch.tensor([[POSITIVE, -1], [POSITIVE, 0]])  # -1 = padding
    with torch.no_grad():
        mixed = model(image, ["liver", None], coords=coords, labels=labels)
        alone = model(image[1:], [None], coords=coords[1:], labels=labels[1:])
    torch.testing.assert_close(mixed.logits[1:], alone.logits, rtol=1e-4, atol=1e-4)
