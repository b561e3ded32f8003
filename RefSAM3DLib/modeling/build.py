"""Builder functions: a config name (+ optional SAM / CLIP weights) -> a ready RefSAM3D model."""
from __future__ import annotations

from pathlib import Path

from .clip_weights import load_clip_text_file, load_clip_text_pretrained
from .config import RefSAM3DConfig, get_config
from .lite_refsam3d import create_model
from .refsam3d import RefSAM3D
from .sam_weights import CheckpointError, WeightLoadReport, map_sam_vit_b


def build_refsam3d(config: str | RefSAM3DConfig = "vit_b", sam_checkpoint: str | Path | None = None,
                   clip_checkpoint: str | Path | None = None,
                   clip_pretrained: str | None = None,
                   medsam_lite_checkpoint: str | Path | None = None) -> tuple[RefSAM3D, list[WeightLoadReport]]:
    """Build a model; seed it from SAM ViT-B and CLIP text weights (``vit_b``) or from LiteMedSAM / MobileSAM
    (``lite``) when given. Returns (model, load reports)."""
    cfg = get_config(config)
    if clip_pretrained and clip_pretrained.split("/", 1)[-1] == "openai":
        cfg = cfg.replace(text_act="quick_gelu")  # OpenAI CLIP was trained with QuickGELU
    model = create_model(cfg)
    reports = []
    if medsam_lite_checkpoint is not None:
        if not cfg.is_lite:
            raise CheckpointError(f"config {cfg.name!r} has a ViT backbone; LiteMedSAM/MobileSAM weights only apply to "
                                  f"the 'lite' configuration")
        from .litemedsam_weights import map_litemedsam

        reports.append(map_litemedsam(model, medsam_lite_checkpoint))
    if sam_checkpoint is not None:
        if cfg.is_lite:
            raise CheckpointError(f"config {cfg.name!r} uses TinyViT; SAM ViT-B weights only apply to 'vit_b'-style "
                                  f"configs (use --medsam-lite-checkpoint)")
        reports.append(map_sam_vit_b(model, sam_checkpoint))
    if clip_checkpoint is not None or clip_pretrained is not None:
        if cfg.text_encoder != "clip":
            raise CheckpointError(f"config {cfg.name!r} uses the {cfg.text_encoder} text encoder; CLIP weights "
                                  f"only apply to configs with text_encoder='clip'")
        if clip_checkpoint is not None:
            reports.append(load_clip_text_file(model.text_encoder, clip_checkpoint))
        else:
            reports.append(load_clip_text_pretrained(model.text_encoder, clip_pretrained))
    model.configure_trainable()
    return model, reports
