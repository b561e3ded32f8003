"""Load CLIP text-tower weights into RefSAM3D's CLIPTextEncoder.

Accepted sources: an open_clip / OpenAI-layout CLIP state dict on disk (full CLIP or text-only;
``text.``/``module.`` prefixes stripped, vision keys ignored), or an open_clip pretrained tag such
as ``ViT-B-16/laion2b_s34b_b88k`` (needs the internet or an open_clip cache).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .sam_weights import CheckpointError, WeightLoadReport, read_state_dict
from .text_encoder import CLIPTextEncoder

TEXT_PREFIXES = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")


def _text_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        key = key.removeprefix("text.")
        if key.startswith(TEXT_PREFIXES):
            out[key] = value
    return out


def load_clip_text_state(encoder: CLIPTextEncoder, state: dict[str, torch.Tensor], source: str) -> WeightLoadReport:
    text = _text_keys(state)
    if "token_embedding.weight" not in text:
        raise CheckpointError(f"{source}: no CLIP text tower found (no 'token_embedding.weight'); expected an "
                              f"open_clip / OpenAI CLIP state dict")
    target = encoder.tower.state_dict()
    wrong = [f"{k} {tuple(v.shape)} != {tuple(target[k].shape)}" for k, v in text.items()
             if k in target and v.shape != target[k].shape]
    missing = sorted(set(target) - set(text))
    if wrong or missing:
        detail = "; ".join(wrong[:3] + [f"missing {m}" for m in missing[:3]])
        raise CheckpointError(f"{source}: CLIP text tower does not match the config (ViT-B-16 text: width 512, "
                              f"12 layers, context 77): {detail}")
    encoder.tower.load_state_dict({k: text[k] for k in target})
    encoder.clear_cache()
    report = WeightLoadReport(source=source)
    report.mapped = {f"text_encoder.tower.{k}": f"{k} (copy)" for k in target}
    report.skipped = {k: "not part of the text tower" for k in state if k.removeprefix("text.") not in target}
    return report


def load_clip_text_file(encoder: CLIPTextEncoder, path: str | Path) -> WeightLoadReport:
    return load_clip_text_state(encoder, read_state_dict(path, "CLIP checkpoint"), str(path))


def load_clip_text_pretrained(encoder: CLIPTextEncoder, spec: str) -> WeightLoadReport:
    """``spec`` = 'ARCH/TAG' (e.g. 'ViT-B-16/openai'): fetched by open_clip; fails clearly when offline."""
    if "/" not in spec:
        raise CheckpointError(f"CLIP pretrained spec {spec!r} must look like 'ViT-B-16/laion2b_s34b_b88k'")
    arch, tag = spec.split("/", 1)
    import open_clip

    try:
        model = open_clip.create_model(arch, pretrained=tag)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot fetch CLIP weights {spec!r} ({str(exc)[:160]}); offline, download the "
                              f"open_clip checkpoint elsewhere and pass it as a file (--clip-checkpoint)") from exc
    return load_clip_text_state(encoder, model.state_dict(), f"open_clip:{spec}")
