"""Shapes through every stage of the network (tiny config run, paper config's grid checked)."""
import pytest
import torch

from RefSAM3DLib.modeling.config import get_config
from RefSAM3DLib.modeling.image_encoder import ImageEncoder3D
from RefSAM3DLib.modeling.patch_embed import PatchEmbed3D
from RefSAM3DLib.modeling.refsam3d import RefSAM3D
from RefSAM3DLib.modeling.windows3d import merge, pad_to_windows, partition, shift_mask


@pytest.mark.slow
def test_tiny_model_shapes_at_every_stage():
    torch.manual_seed(0)
    cfg = get_config("tiny")
    model = RefSAM3D(cfg).eval()
    image = torch.randn(2, 1, *cfg.window_size)
    grid = cfg.token_grid
    tokens = model.image_encoder.patch_embed(image)
    assert tokens.shape == (2, *grid, cfg.embed_dim)
    stages = model.encode_image(image)
    assert [tuple(s.shape) for s in stages] == [(2, cfg.neck_dim, *grid)] * 4
    text, has_text = model.encode_text(["liver", "left kidney"])
    assert text.tokens.shape == (2, cfg.text_context, cfg.text_width)
    assert text.pooled.shape == (2, cfg.text_embed_dim)
    words, padding, sentence = model.project_text(text, has_text, 2)
    assert words.shape == (2, cfg.text_context, cfg.neck_dim) and sentence.shape == (2, cfg.neck_dim)
    assert padding[0].sum() == cfg.text_context - 3  # SOT, "liver", EOT are real tokens
    fused = model.fusion(stages, words, padding)
    assert [f.shape for f in fused] == [s.shape for s in stages]
    out = model.decode(stages, image, text, has_text)
    assert out.logits.shape == (2, 1, *cfg.window_size)
    assert out.low_res_logits.shape == (2, 1, *(4 * g for g in grid))
    assert out.presence_logits.shape == (2,)
    assert torch.isfinite(out.logits).all()


def test_decoder_upsampling_path_shapes():
    cfg = get_config("tiny")
    model = RefSAM3D(cfg).eval()
    x = torch.randn(1, cfg.neck_dim, *cfg.token_grid)
    sizes = []
    for up in model.mask_decoder.upscaling:
        x = up(x)
        sizes.append((x.shape[1], tuple(x.shape[2:])))
    expected = [(c, tuple(g * 2 ** (i + 1) for g in cfg.token_grid)) for i, c in enumerate(cfg.decoder_channels)]
    assert sizes == expected
    assert sizes[-1][1] == cfg.window_size


def test_paper_config_token_grid_and_patch_embedding():
    cfg = get_config("vit_b")
    assert cfg.token_grid == (8, 8, 8) and cfg.num_upsampling_steps == 4
    embed = PatchEmbed3D(1, cfg.embed_dim, cfg.patch_size)
    with torch.no_grad():
        in_plane = embed.in_plane(torch.zeros(1, 1, 128, 128, 128))
        tokens = embed(torch.zeros(1, 1, 128, 128, 128))
    assert in_plane.shape == (1, 768, 128, 8, 8)
    assert tokens.shape == (1, 8, 8, 8, 768)


def test_paper_config_attention_layout():
    cfg = get_config("vit_b")
    enc = ImageEncoder3D(cfg)
    windows = [b.window for b in enc.blocks]
    assert [i for i, w in enumerate(windows) if w == 0] == [2, 5, 8, 11]
    assert all(w == 4 for i, w in enumerate(windows) if i not in (2, 5, 8, 11))
    shifted = [i for i, b in enumerate(enc.blocks) if b.shift]
    assert shifted == [1, 4, 7, 10]  # every other windowed block
    assert enc.blocks[0].attn.rel_pos_h.shape == (7, 64)  # 4-token windows
    assert enc.blocks[2].attn.rel_pos_h.shape == (15, 64)  # global over the 8^3 grid
    all_global = ImageEncoder3D(cfg.replace(all_global=True))
    assert all(b.window == 0 for b in all_global.blocks)


def test_window_partition_round_trip_and_shift_mask():
    x = torch.randn(2, 8, 8, 8, 5)
    padded, grid = pad_to_windows(x, 4)
    windows = partition(padded, 4)
    assert windows.shape == (16, 4, 4, 4, 5)
    assert torch.equal(merge(windows, 4, grid), x)
    odd, grid = pad_to_windows(torch.randn(1, 5, 6, 7, 3), 4)
    assert grid == (8, 8, 8) and odd.shape == (1, 8, 8, 8, 3)
    mask = shift_mask((8, 8, 8), 4, 2, torch.device("cpu"))
    assert mask.shape == (8, 64, 64)
    assert (mask[0] == 0).all()  # the first window holds one region only
    assert (mask[-1] < 0).any()  # the last window mixes wrapped regions -> masked pairs
    assert torch.equal(mask, mask.transpose(1, 2))
