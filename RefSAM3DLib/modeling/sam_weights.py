"""Map an official SAM ViT-B checkpoint (``sam_vit_b_01ec64.pth``) into the 3D RefSAM3D model.

Every 2D tensor gets an explicit rule: copied, RGB-summed and given a depth axis (patch kernel),
resampled (relative-position tables, position table), or inflated over depth (neck, mask
downscaler, upscaling transposed convolutions). The returned report lists what was mapped, what is
new (no SAM counterpart) and which SAM tensors were not used, so a user can see exactly what the
pretrained weights cover.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import RefSAM3DError
from .refsam3d import RefSAM3D

SAM_VIT_B = {"embed_dim": 768, "depth": 12, "global_blocks": (2, 5, 8, 11), "patch": 16, "pos_grid": 64}


@dataclass
class WeightLoadReport:
    source: str
    mapped: dict[str, str] = field(default_factory=dict)  # target key -> "source key (rule)"
    new: list[str] = field(default_factory=list)  # target keys left at their initialisation
    skipped: dict[str, str] = field(default_factory=dict)  # source key -> reason

    def summary(self) -> str:
        return (f"{self.source}: mapped {len(self.mapped)} tensors, {len(self.new)} new (not in the source), "
                f"{len(self.skipped)} source tensors unused")


class CheckpointError(RefSAM3DError, ValueError):
    """A weight file that cannot be used, with a message that says what is wrong and what to do."""


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """torch.load a plain state dict (also unwraps {'model': ...}/{'state_dict': ...} and 'module.' prefixes)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} file not found; check the path")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CheckpointError(f"{path}: cannot read as a {what} ({type(exc).__name__}: {str(exc)[:120]}); "
                              f"the file may be truncated or not a PyTorch checkpoint -- download it again") from exc
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: not a {what} state dict (expected a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in data.items()}


def _check_is_sam_vit_b(sd: dict[str, torch.Tensor], path: Path) -> None:
    key = "image_encoder.patch_embed.proj.weight"
    if key not in sd:
        raise CheckpointError(f"{path}: not a Segment Anything checkpoint (no '{key}'); "
                              f"RefSAM3D vit_b needs the official sam_vit_b_01ec64.pth")
    width = sd[key].shape[0]
    if width != SAM_VIT_B["embed_dim"]:
        kind = {1024: "ViT-L", 1280: "ViT-H"}.get(width, f"{width}-wide")
        raise CheckpointError(f"{path}: this is a SAM {kind} checkpoint; RefSAM3D vit_b needs SAM ViT-B "
                              f"(sam_vit_b_01ec64.pth, embed dim 768)")
    depth = len({k.split(".")[2] for k in sd if k.startswith("image_encoder.blocks.")})
    if depth != SAM_VIT_B["depth"]:
        raise CheckpointError(f"{path}: SAM checkpoint has {depth} encoder blocks, ViT-B has 12; "
                              f"the file is incomplete or not sam_vit_b_01ec64.pth")


def _resample_rows(table: torch.Tensor, rows: int) -> torch.Tensor:
    if table.shape[0] == rows:
        return table.clone()
    return F.interpolate(table.T[None].float(), size=rows, mode="linear", align_corners=False)[0].T


def _inflate(kernel2d: torch.Tensor, depth: int, divide: bool) -> torch.Tensor:
    """(O, I, kh, kw) -> (O, I, depth, kh, kw), repeated over depth (divided by depth to keep the response)."""
    k = kernel2d[:, :, None].repeat(1, 1, depth, 1, 1)
    return k / depth if divide else k


def map_sam_vit_b(model: RefSAM3D, path: str | Path) -> WeightLoadReport:
    """Load SAM ViT-B weights into ``model`` in place; returns the mapping report."""
    path = Path(path)
    cfg = model.config
    if cfg.embed_dim != 768 or cfg.depth != 12 or cfg.num_heads != 12 or cfg.neck_dim != 256:
        raise CheckpointError(f"config {cfg.name!r} is not ViT-B shaped (embed 768, 12 blocks, 12 heads, "
                              f"neck 256); SAM ViT-B weights only fit the 'vit_b' config")
    sd = read_state_dict(path, "SAM checkpoint")
    _check_is_sam_vit_b(sd, path)
    target = model.state_dict()
    report = WeightLoadReport(source=str(path))
    new_values: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def put(tkey: str, skey: str, value: torch.Tensor, rule: str) -> None:
        if tuple(value.shape) != tuple(target[tkey].shape):
            raise CheckpointError(f"{path}: {skey} gives shape {tuple(value.shape)} but {tkey} needs "
                                  f"{tuple(target[tkey].shape)}")
        new_values[tkey] = value.to(target[tkey].dtype)
        report.mapped[tkey] = f"{skey} ({rule})"
        used.add(skey)

    def src(key: str) -> torch.Tensor:
        if key not in sd:
            raise CheckpointError(f"{path}: missing '{key}'; the SAM checkpoint is incomplete -- download it again")
        return sd[key]

    # ---- image encoder: all 177 tensors
    ie, te = "image_encoder.", "image_encoder."
    put(te + "patch_embed.in_plane.weight", ie + "patch_embed.proj.weight",
        src(ie + "patch_embed.proj.weight").sum(1, keepdim=True)[:, :, None], "RGB-summed, depth axis added")
    put(te + "patch_embed.in_plane.bias", ie + "patch_embed.proj.bias", src(ie + "patch_embed.proj.bias"), "copy")
    pos = src(ie + "pos_embed")
    grid = cfg.pretrain_pos_grid
    if pos.shape[1] != grid:
        pos = F.interpolate(pos.permute(0, 3, 1, 2), size=(grid, grid), mode="bilinear", antialias=True,
                            align_corners=False).permute(0, 2, 3, 1)
    put(te + "pos.pos_embed", ie + "pos_embed", pos, "copy" if grid == 64 else f"resampled to {grid}x{grid}")
    for i in range(12):
        b = f"blocks.{i}."
        for name in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "attn.qkv.weight", "attn.qkv.bias",
                     "attn.proj.weight", "attn.proj.bias", "mlp.lin1.weight", "mlp.lin1.bias", "mlp.lin2.weight",
                     "mlp.lin2.bias"):
            put(te + b + name, ie + b + name, src(ie + b + name), "copy")
        resampled = {}
        for axis in ("h", "w"):
            rows = target[te + b + f"attn.rel_pos_{axis}"].shape[0]
            resampled[axis] = _resample_rows(src(ie + b + f"attn.rel_pos_{axis}"), rows)
            put(te + b + f"attn.rel_pos_{axis}", ie + b + f"attn.rel_pos_{axis}", resampled[axis],
                f"{sd[ie + b + f'attn.rel_pos_{axis}'].shape[0]} -> {rows} rows")
        d_rows = target[te + b + "attn.rel_pos_d"].shape[0]
        new_values[te + b + "attn.rel_pos_d"] = _resample_rows(0.5 * (resampled["h"] + resampled["w"]), d_rows)
        report.mapped[te + b + "attn.rel_pos_d"] = f"{ie + b}attn.rel_pos_h/w (mean of h and w, new depth table)"
    neck = f"necks.{len(cfg.stage_indexes) - 1}."
    put(te + neck + "conv1.weight", ie + "neck.0.weight", src(ie + "neck.0.weight")[:, :, None], "depth axis added")
    put(te + neck + "norm1.weight", ie + "neck.1.weight", src(ie + "neck.1.weight"), "copy")
    put(te + neck + "norm1.bias", ie + "neck.1.bias", src(ie + "neck.1.bias"), "copy")
    put(te + neck + "conv2.weight", ie + "neck.2.weight", _inflate(src(ie + "neck.2.weight"), 3, True),
        "inflated over 3 depth taps / 3")
    put(te + neck + "norm2.weight", ie + "neck.3.weight", src(ie + "neck.3.weight"), "copy")
    put(te + neck + "norm2.bias", ie + "neck.3.bias", src(ie + "neck.3.bias"), "copy")

    # ---- prompt encoder
    pe, tp = "prompt_encoder.", "prompt_encoder."
    gauss = target[tp + "pe_layer.gaussian"].clone()
    sam_gauss = src(pe + "pe_layer.positional_encoding_gaussian_matrix")
    gauss[2], gauss[1] = sam_gauss[0], sam_gauss[1]  # SAM rows are (x=w, y=h); ours are (d, h, w)
    put(tp + "pe_layer.gaussian", pe + "pe_layer.positional_encoding_gaussian_matrix", gauss,
        "rows x,y -> w,h; depth row new")
    for k in range(4):
        put(tp + f"point_embeddings.{k}.weight", pe + f"point_embeddings.{k}.weight",
            src(pe + f"point_embeddings.{k}.weight"), "copy")
    for name in ("not_a_point_embed.weight", "no_mask_embed.weight"):
        put(tp + name, pe + name, src(pe + name), "copy")
    for idx, depth in ((0, 2), (3, 2), (6, 1)):
        put(tp + f"mask_downscaling.{idx}.weight", pe + f"mask_downscaling.{idx}.weight",
            _inflate(src(pe + f"mask_downscaling.{idx}.weight"), depth, True), f"inflated over {depth} depth taps")
        put(tp + f"mask_downscaling.{idx}.bias", pe + f"mask_downscaling.{idx}.bias",
            src(pe + f"mask_downscaling.{idx}.bias"), "copy")
    for idx in (1, 4):
        for name in ("weight", "bias"):
            put(tp + f"mask_downscaling.{idx}.{name}", pe + f"mask_downscaling.{idx}.{name}",
                src(pe + f"mask_downscaling.{idx}.{name}"), "copy")

    # ---- mask decoder
    md = "mask_decoder."
    for key in sd:
        if key.startswith(md + "transformer."):
            put(key, key, sd[key], "copy")
    put(md + "mask_token.weight", md + "mask_tokens.weight", src(md + "mask_tokens.weight")[:1],
        "first of SAM's 4 mask tokens")
    put(md + "presence_token.weight", md + "iou_token.weight", src(md + "iou_token.weight"),
        "SAM's IoU (quality) token seeds the presence token")
    chans = cfg.decoder_channels
    if chans[0] == 64:
        put(md + "upscaling.0.weight", md + "output_upscaling.0.weight",
            _inflate(src(md + "output_upscaling.0.weight"), 2, False), "kernel repeated over depth (k = stride)")
        put(md + "upscaling.0.bias", md + "output_upscaling.0.bias", src(md + "output_upscaling.0.bias"), "copy")
        for name in ("weight", "bias"):
            put(md + f"upscaling_norms.0.{name}", md + f"output_upscaling.1.{name}",
                src(md + f"output_upscaling.1.{name}"), "copy")
        if len(chans) > 1 and chans[1] == 32:
            put(md + "upscaling.1.weight", md + "output_upscaling.3.weight",
                _inflate(src(md + "output_upscaling.3.weight"), 2, False), "kernel repeated over depth (k = stride)")
            put(md + "upscaling.1.bias", md + "output_upscaling.3.bias", src(md + "output_upscaling.3.bias"), "copy")
    for layer in (0, 1):
        for name in ("weight", "bias"):
            put(md + f"hypernetwork.layers.{layer}.{name}", md + f"output_hypernetworks_mlps.0.layers.{layer}.{name}",
                src(md + f"output_hypernetworks_mlps.0.layers.{layer}.{name}"), "copy (mask token 0's MLP)")

    for key in sd:
        if key not in used:
            if key.startswith(md + "output_hypernetworks_mlps."):
                reason = "hypernetwork output width differs (SAM 32, ours " f"{chans[-1]}) or unused mask token"
            elif key.startswith(md + "iou_prediction_head."):
                reason = "IoU head not used (single-mask decoder; presence head is new)"
            else:
                reason = "no RefSAM3D counterpart"
            report.skipped[key] = reason
    report.new = sorted(k for k in target if k not in new_values and not k.startswith("text_encoder."))
    missing, unexpected = model.load_state_dict(new_values, strict=False)
    assert not unexpected, unexpected
    return report
