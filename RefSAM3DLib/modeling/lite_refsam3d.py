"""RefSAM3D ``lite``: a pretrained medical 2D SAM (LiteMedSAM) lifted to 3D and taught text.

slices --SliceEncoder (frozen TinyViT, cached per slice)--> 4 stage maps per slice
stacked slices --Lift3D (3D adapters, zero-initialised)--> 3D stage maps
words / sentence (MiniLM, frozen) --CrossModalProjector--> --LiteTextFusion--> fused stage maps
sentence + clicks / box corners + previous mask --PromptEncoder3D--> sparse / dense prompts
fused maps + prompts + raw window --LiteMaskDecoder3D--> logits, presence

The public interface is RefSAM3D's (``encode_image`` / ``decode`` / ``forward``), so the engine and the
trainer drive both the same way; ``encode_slices`` and ``lift`` split ``encode_image`` so that a session or a
training cache can run the expensive frozen part once per slice and only the cheap 3D part per window.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import RefSAM3DConfig
from .lift3d import Lift3D
from .lite_fusion import LiteTextFusion
from .lite_mask_decoder import LiteMaskDecoder3D
from .mask_decoder import DecoderOutput
from .prompt_encoder import PromptEncoder3D
from .refsam3d import RefSAM3D
from .slice_encoder import SliceEncoder
from .text_encoder import TextEncoder
from .text_features import TextFeatures

# The pretrained Fourier features know only x and y; a depth row as strong as theirs changes every prompt token
# and image position at once, while a weak one leaves LiteMedSAM's geometry intact and still tells slices apart.
DEPTH_FREQUENCY_SCALE = 0.25


class LiteRefSAM3D(RefSAM3D):
    def __init__(self, config: RefSAM3DConfig, text_encoder: TextEncoder | None = None) -> None:
        if not config.is_lite:
            raise ValueError(f"config {config.name!r} is not a lite (tinyvit) configuration")
        super().__init__(config, text_encoder)

    def _build_image_path(self, config: RefSAM3DConfig) -> None:
        self.slice_encoder = SliceEncoder(strided_stem=config.tinyvit_stem == "strided")
        self.lift = Lift3D(self.slice_encoder.channels, config.lite_adapter_dims)

    def _build_fusion(self, config: RefSAM3DConfig) -> nn.Module:
        return LiteTextFusion(self.slice_encoder.channels, config.neck_dim, config.lite_fusion_heads)

    def _build_prompt_path(self, config: RefSAM3DConfig) -> None:
        self.prompt_encoder = PromptEncoder3D(config.neck_dim, config.token_grid, config.window_size, config.mask_stride)
        with torch.no_grad():  # depth gets low frequencies: close to the 2D prompt geometry at the start
            self.prompt_encoder.pe_layer.gaussian[0].mul_(DEPTH_FREQUENCY_SCALE)
        self.mask_decoder = LiteMaskDecoder3D(self.slice_encoder.channels, config.neck_dim, config.decoder_depth,
                                              config.decoder_heads, config.decoder_mlp_dim)

    def frozen_image_parameters(self) -> list[nn.Parameter]:
        """The whole TinyViT: frozen and cached per slice (adapters, fusion, prompt encoder, decoder are trained)."""
        return list(self.slice_encoder.parameters())

    # ------------------------------------------------------------------ image path
    def encode_slices(self, slices: torch.Tensor) -> list[torch.Tensor]:
        """(N, 1, H, W) normalised slices -> per-slice maps [(N, C, h, w) x 4]: the frozen, cacheable part."""
        return self.slice_encoder(slices)

    def lift_slices(self, slice_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-window stacks [(B, D, C, h, w) x 4] -> 3D stage maps [(B, C, D, h, w) x 4]."""
        return self.lift(slice_maps)

    def encode_image(self, image: torch.Tensor) -> list[torch.Tensor]:
        expected = tuple(self.config.window_size)
        if tuple(image.shape[2:]) != expected or image.shape[1] != 1:
            raise ValueError(f"image window must be (B, 1, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got {tuple(image.shape)}")
        b, _, d, h, w = image.shape
        maps = self.encode_slices(image.reshape(b * d, 1, h, w))
        return self.lift_slices([m.reshape((b, d) + tuple(m.shape[1:])) for m in maps])

    # ------------------------------------------------------------------ prompt path
    def decode(self, stages: list[torch.Tensor], image: torch.Tensor, text: TextFeatures | None,
               has_text: torch.Tensor, coords: torch.Tensor | None = None, labels: torch.Tensor | None = None,
               mask_input: torch.Tensor | None = None) -> DecoderOutput:
        batch = image.shape[0]
        words, padding, sentence = self.project_text(text, has_text, batch)
        fused = self.fusion(stages, words, padding, sentence)
        sparse, dense = self.prompt_encoder(sentence, coords, labels, mask_input, batch)
        dtype = fused[3].dtype
        return self.mask_decoder(fused, self.prompt_encoder.dense_pe().to(dtype), sparse.to(dtype),
                                 dense.to(dtype), image)


def create_model(config: RefSAM3DConfig, text_encoder: TextEncoder | None = None) -> RefSAM3D:
    """The network class a config describes."""
    return LiteRefSAM3D(config, text_encoder) if config.is_lite else RefSAM3D(config, text_encoder)
