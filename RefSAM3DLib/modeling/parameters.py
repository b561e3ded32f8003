"""Parameter accounting per component: what the model costs and what training actually updates."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

COMPONENTS = [
    ("image encoder: frozen 2D TinyViT (per slice)", "slice_encoder."),
    ("image encoder: 3D adapters (lift)", "lift."),
    ("image encoder: in-plane patch conv", "image_encoder.patch_embed.in_plane."),
    ("image encoder: depth patch conv", "image_encoder.patch_embed.depth."),
    ("image encoder: position tables", "image_encoder.pos."),
    ("image encoder: adapters", "image_encoder.blocks.*.adapter."),
    ("image encoder: attention", "image_encoder.blocks.*.attn."),
    ("image encoder: MLP", "image_encoder.blocks.*.mlp."),
    ("image encoder: norms", "image_encoder.blocks.*.norm"),
    ("image encoder: necks", "image_encoder.necks."),
    ("text encoder", "text_encoder."),
    ("cross-modal projector", "projector."),
    ("hierarchical cross-attention", "fusion."),
    ("no-text tokens", "no_text_"),
    ("prompt encoder", "prompt_encoder."),
    ("mask decoder: two-way transformer", "mask_decoder.transformer."),
    ("mask decoder: upsampling + skips", "mask_decoder.upscaling"),
    ("mask decoder: upsampling + skips", "mask_decoder.skip_projections."),
    ("mask decoder: heads + tokens", "mask_decoder."),
]


def _component(name: str) -> str:
    for label, prefix in COMPONENTS:
        if "*" in prefix:
            head, tail = prefix.split("*")
            if name.startswith(head) and tail in name:
                return label
        elif name.startswith(prefix):
            return label
    return "other"


@dataclass
class ParameterCount:
    total: int = 0
    trainable: int = 0


def count_parameters(model: nn.Module) -> dict[str, ParameterCount]:
    counts: dict[str, ParameterCount] = {}
    for name, p in model.named_parameters():
        c = counts.setdefault(_component(name), ParameterCount())
        c.total += p.numel()
        c.trainable += p.numel() if p.requires_grad else 0
    return counts


def parameter_report(model: nn.Module) -> str:
    """Table of total/trainable parameters per component; last line ``total=<N> trainable=<N>``."""
    counts = count_parameters(model)
    order = list(dict.fromkeys(label for label, _ in COMPONENTS)) + ["other"]
    lines = [f"{'component':40s} {'total':>13s} {'trainable':>13s}"]
    total = trainable = 0
    for label in order:
        if label in counts:
            c = counts[label]
            lines.append(f"{label:40s} {c.total:13,d} {c.trainable:13,d}")
            total += c.total
            trainable += c.trainable
    lines.append(f"{'all':40s} {total:13,d} {trainable:13,d}  ({100 * trainable / max(total, 1):.1f} % trainable)")
    lines.append(f"total={total} trainable={trainable}")
    return "\n".join(lines)
