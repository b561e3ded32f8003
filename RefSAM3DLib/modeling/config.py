"""Model configurations: one plain dataclass, saved inside every RefSAM3D checkpoint.

A config fully determines the network's shapes, so a checkpoint can always be rebuilt from the
config stored next to its weights. Named presets live in ``PRESETS``: ``vit_b`` is the paper's
model (SAM ViT-B lifted to 3D, 128^3 windows of 16^3 patches, CLIP text), ``demo`` is the small
model trained and shipped in this repository, ``tiny`` keeps unit tests fast on a CPU.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

CONFIG_FORMAT_VERSION = 1


@dataclass
class RefSAM3DConfig:
    name: str = "vit_b"

    # ---- input window (model space: axes D,H,W; D is the slice axis SAM's 2D kernel never sees)
    window_size: tuple[int, int, int] = (128, 128, 128)
    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 1.5)
    ct_window_hu: tuple[float, float] = (-1000.0, 1000.0)
    mr_percentiles: tuple[float, float] = (0.5, 99.5)

    # ---- image encoder: "vit3d" = SAM ViT-B lifted to 3D with adapters inside its blocks (the paper);
    # "tinyvit" = the frozen pretrained 2D TinyViT of LiteMedSAM/MobileSAM on every axial slice, lifted to 3D by
    # adapters on its stage outputs (the ``lite`` model; the in-plane window then covers a whole slice)
    backbone: str = "vit3d"
    tinyvit_stem: str = "pointwise"  # "pointwise" (LiteMedSAM) or "strided" (MobileSAM)
    lite_adapter_dims: tuple[int, ...] = (32, 48, 64, 64)
    lite_fusion_heads: tuple[int, ...] = (4, 4, 4)

    # ---- 3D image encoder (SAM ViT-B layout)
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    pretrain_pos_grid: int = 64  # SAM: 1024 px / 16 = 64 tokens per side
    attn_window: int = 4  # tokens per side of a 3D attention window on SAM's windowed blocks
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    all_global: bool = False
    shift_windows: bool = True
    adapter_dim: int = 384
    stage_indexes: tuple[int, ...] = (2, 5, 8, 11)
    neck_dim: int = 256
    sam_window_size: int = 14  # SAM's own 2D window, sets the size of its rel-pos tables

    # ---- text branch
    text_encoder: str = "clip"  # "clip" (own CLIP text tower, open_clip key layout) or "minilm"
    text_width: int = 512
    text_layers: int = 12
    text_heads: int = 8
    text_context: int = 77
    text_vocab: int = 49408
    text_embed_dim: int = 512  # CLIP text_projection output (the pooled sentence vector)
    text_act: str = "gelu"  # "quick_gelu" for OpenAI weights
    minilm_max_tokens: int = 32

    # ---- cross-modal fusion
    fusion_heads: int = 8
    fusion_ffn_dim: int = 1024

    # ---- prompt encoder / mask decoder
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    decoder_channels: tuple[int, ...] = (64, 32, 16, 8)
    fuse_channels: int = 16

    # ---- which weights train
    freeze_backbone: bool = True  # True: SAM-derived encoder weights stay frozen (the paper's split)

    format_version: int = CONFIG_FORMAT_VERSION
    notes: str = ""

    def __post_init__(self) -> None:
        for key in ("window_size", "spacing_mm", "ct_window_hu", "mr_percentiles", "global_attn_indexes",
                    "stage_indexes", "decoder_channels", "lite_adapter_dims", "lite_fusion_heads"):
            setattr(self, key, tuple(getattr(self, key)))
        self.validate()

    # ------------------------------------------------------------------ derived shapes
    @property
    def is_lite(self) -> bool:
        return self.backbone == "tinyvit"

    @property
    def token_grid(self) -> tuple[int, int, int]:
        if self.is_lite:  # every slice is a token plane; TinyViT's embedding is at 1/4 (1/16 for MobileSAM)
            d, h, w = self.window_size
            return (d, h // self.patch_size, w // self.patch_size)
        return tuple(s // self.patch_size for s in self.window_size)  # type: ignore[return-value]

    @property
    def mask_stride(self) -> tuple[int, int, int]:
        """Per-axis stride of each of the prompt encoder's two mask-downscaling convolutions."""
        return (1, 2, 2) if self.is_lite else (2, 2, 2)

    @property
    def mask_input_size(self) -> tuple[int, int, int]:
        """Grid of the previous-mask (dense) prompt and of the decoder's low-resolution logits."""
        return tuple(g * s * s for g, s in zip(self.token_grid, self.mask_stride))  # type: ignore[return-value]

    @property
    def fit_in_plane(self) -> bool:
        """True: the in-plane spacing grows per volume so that one window covers the whole axial slice."""
        return self.is_lite

    @property
    def num_upsampling_steps(self) -> int:
        return self.patch_size.bit_length() - 1

    @property
    def text_token_dim(self) -> int:
        return 384 if self.text_encoder == "minilm" else self.text_width

    @property
    def text_sentence_dim(self) -> int:
        return 384 if self.text_encoder == "minilm" else self.text_embed_dim

    def validate(self) -> None:
        if self.backbone not in ("vit3d", "tinyvit"):
            raise ValueError(f"config {self.name}: backbone must be 'vit3d' or 'tinyvit', got {self.backbone!r}")
        if self.is_lite:
            self._validate_lite()
            return
        p = self.patch_size
        if p < 2 or p & (p - 1):
            raise ValueError(f"config {self.name}: patch_size must be a power of two >= 2, got {p}")
        if any(s % p for s in self.window_size):
            raise ValueError(f"config {self.name}: window_size {self.window_size} must be divisible by patch_size {p}")
        if len(self.decoder_channels) != self.num_upsampling_steps:
            raise ValueError(f"config {self.name}: decoder_channels needs {self.num_upsampling_steps} entries "
                             f"(one per x2 step from 1/{p} to full resolution), got {len(self.decoder_channels)}")
        if len(self.stage_indexes) != 4 or max(self.stage_indexes) >= self.depth:
            raise ValueError(f"config {self.name}: stage_indexes must be 4 block indexes < depth={self.depth}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"config {self.name}: embed_dim must be divisible by num_heads")
        if self.text_encoder not in ("clip", "minilm"):
            raise ValueError(f"config {self.name}: text_encoder must be 'clip' or 'minilm', got {self.text_encoder!r}")

    def _validate_lite(self) -> None:
        _, h, w = self.window_size
        if self.tinyvit_stem not in ("pointwise", "strided"):
            raise ValueError(f"config {self.name}: tinyvit_stem must be 'pointwise' or 'strided'")
        if self.patch_size != (16 if self.tinyvit_stem == "strided" else 4):
            raise ValueError(f"config {self.name}: a TinyViT with a {self.tinyvit_stem} stem has patch_size "
                             f"{16 if self.tinyvit_stem == 'strided' else 4}")
        if h != w or h % (4 * self.patch_size):
            raise ValueError(f"config {self.name}: the in-plane window must be square and a multiple of "
                             f"{4 * self.patch_size}, got {h}x{w}")
        if self.neck_dim != 256 or self.text_encoder != "minilm":
            raise ValueError(f"config {self.name}: the lite model has SAM's 256-channel embedding and MiniLM text")
        if len(self.lite_adapter_dims) != 4 or len(self.lite_fusion_heads) != 3:
            raise ValueError(f"config {self.name}: lite_adapter_dims needs 4 entries, lite_fusion_heads 3")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RefSAM3DConfig":
        version = int(data.get("format_version", 0))
        if version > CONFIG_FORMAT_VERSION:
            raise ValueError(f"config format version {version} is newer than this RefSAM3D "
                             f"(supports <= {CONFIG_FORMAT_VERSION}); upgrade refsam3d")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config has unknown fields {unknown}; was it written by a newer refsam3d?")
        return cls(**data)

    def replace(self, **changes: Any) -> "RefSAM3DConfig":
        return dataclasses.replace(self, **changes)


def _vit_b() -> RefSAM3DConfig:
    return RefSAM3DConfig(name="vit_b", notes="Paper model: SAM ViT-B in 3D, 128^3 at 16^3 patches, CLIP ViT-B-16 text.")


def _demo() -> RefSAM3DConfig:
    # Trained here from scratch (no SAM weights exist on our machines), so nothing is frozen but the
    # pretrained MiniLM text encoder. Coarse spacing gives each window the context organs need; a soft-tissue
    # CT window (-250..350 HU) keeps organ contrast large for a small model learning from few volumes.
    return RefSAM3DConfig(
        name="demo", window_size=(64, 64, 64), spacing_mm=(3.0, 3.0, 3.0), ct_window_hu=(-250.0, 350.0), patch_size=8,
        embed_dim=192, depth=6, num_heads=6, pretrain_pos_grid=8, attn_window=4,
        global_attn_indexes=(1, 3, 5), adapter_dim=48, stage_indexes=(1, 2, 3, 5), neck_dim=96,
        text_encoder="minilm", fusion_heads=4, fusion_ffn_dim=384,
        decoder_depth=2, decoder_heads=4, decoder_mlp_dim=384, decoder_channels=(32, 16, 8), fuse_channels=8,
        freeze_backbone=False, notes="Small demo model trained on the shared CT/MR volumes with MiniLM text.")


def _tiny() -> RefSAM3DConfig:
    return RefSAM3DConfig(
        name="tiny", window_size=(32, 32, 32), spacing_mm=(4.0, 4.0, 4.0), patch_size=8,
        embed_dim=48, depth=4, num_heads=4, pretrain_pos_grid=6, attn_window=2,
        global_attn_indexes=(1, 3), adapter_dim=16, stage_indexes=(0, 1, 2, 3), neck_dim=32, sam_window_size=3,
        text_encoder="clip", text_width=32, text_layers=2, text_heads=4, text_embed_dim=32,
        fusion_heads=4, fusion_ffn_dim=64, decoder_depth=2, decoder_heads=4, decoder_mlp_dim=64,
        decoder_channels=(16, 8, 8), fuse_channels=8, notes="Unit-test model (random weights).")


def _lite() -> RefSAM3DConfig:
    # LiteMedSAM's TinyViT (frozen) on every axial slice. 128 x 128 in-plane at >= 3 mm covers a whole abdominal
    # slice (the spacing grows for wider fields of view); 16 slices of 3 mm per window (the decoder's cost is
    # linear in the slices of a window, and 16 keeps a CPU training step at a few seconds). A soft-tissue window close
    # to MedSAM's own CT preprocessing keeps the pretrained features in the range they were trained on.
    return RefSAM3DConfig(
        name="lite", backbone="tinyvit", tinyvit_stem="pointwise", window_size=(16, 128, 128),
        spacing_mm=(3.0, 3.0, 3.0), ct_window_hu=(-160.0, 240.0), patch_size=4, neck_dim=256,
        text_encoder="minilm", decoder_depth=2, decoder_heads=8, decoder_mlp_dim=2048,
        freeze_backbone=True, notes="LiteMedSAM TinyViT (frozen, per slice) lifted to 3D; MiniLM text.")


def _lite_tiny() -> RefSAM3DConfig:
    return _lite().replace(name="lite_tiny", window_size=(4, 32, 32), notes="lite layout on tiny windows (tests).")


PRESETS = {"vit_b": _vit_b, "demo": _demo, "tiny": _tiny, "lite": _lite, "lite_tiny": _lite_tiny}


def get_config(name_or_config: "str | RefSAM3DConfig | dict") -> RefSAM3DConfig:
    """Return a fresh config for a preset name, a dict, or a config (copied)."""
    if isinstance(name_or_config, RefSAM3DConfig):
        return dataclasses.replace(name_or_config)
    if isinstance(name_or_config, dict):
        return RefSAM3DConfig.from_dict(name_or_config)
    if name_or_config not in PRESETS:
        raise KeyError(f"unknown model config {name_or_config!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name_or_config]()


__all__ = ["RefSAM3DConfig", "PRESETS", "get_config", "CONFIG_FORMAT_VERSION"]
