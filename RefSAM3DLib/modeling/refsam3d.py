"""RefSAM3D: the assembled network (paper Fig. 1).

image window --ImageEncoder3D--> stage maps F_1..F_4
text --TextEncoder (frozen, cached)--> words + sentence --CrossModalProjector--> T, s
F_i + T --HierarchicalCrossAttention--> F'_i
s + clicks/box + previous mask --PromptEncoder3D--> sparse / dense prompts
F'_4, prompts, skips F'_1..F'_3, raw window --MaskDecoder3D--> logits, low-res logits, presence

``encode_image`` and ``decode`` are separate so a session can cache the (expensive) image part and
run only the prompt path for every new prompt or click. A prompt may have no text (clicks only):
its sentence and words are replaced by learned "no text" tokens.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .config import RefSAM3DConfig
from .cross_modal import CrossModalProjector
from .hierarchical_fusion import HierarchicalCrossAttention
from .image_encoder import ImageEncoder3D
from .mask_decoder import DecoderOutput, MaskDecoder3D
from .prompt_encoder import PromptEncoder3D
from .text_encoder import TextEncoder, build_text_encoder
from .text_features import TextFeatures


class RefSAM3D(nn.Module):
    def __init__(self, config: RefSAM3DConfig, text_encoder: TextEncoder | None = None) -> None:
        super().__init__()
        self.config = config
        dim = config.neck_dim
        self._build_image_path(config)
        self.text_encoder = text_encoder if text_encoder is not None else build_text_encoder(config)
        self.projector = CrossModalProjector(self.text_encoder.token_dim, self.text_encoder.sentence_dim, dim)
        self.fusion = self._build_fusion(config)
        self.no_text_word = nn.Parameter(torch.zeros(1, 1, dim))
        self.no_text_sentence = nn.Parameter(torch.zeros(1, dim))
        nn.init.normal_(self.no_text_word, std=0.02)
        nn.init.normal_(self.no_text_sentence, std=0.02)
        self._build_prompt_path(config)
        self.configure_trainable()

    # ------------------------------------------------------------------ construction hooks (the lite model overrides)
    def _build_image_path(self, config: RefSAM3DConfig) -> None:
        self.image_encoder = ImageEncoder3D(config)

    def _build_fusion(self, config: RefSAM3DConfig) -> nn.Module:
        return HierarchicalCrossAttention(config.neck_dim, config.fusion_heads, config.fusion_ffn_dim)

    def _build_prompt_path(self, config: RefSAM3DConfig) -> None:
        self.prompt_encoder = PromptEncoder3D(config.neck_dim, config.token_grid, config.window_size)
        self.mask_decoder = MaskDecoder3D(config)

    def frozen_image_parameters(self) -> list[nn.Parameter]:
        """Image-side weights that stay as pretrained: SAM's blocks when the config freezes the backbone."""
        if not self.config.freeze_backbone:
            return []
        frozen = set(self.image_encoder.frozen_parameter_names())
        return [p for name, p in self.image_encoder.named_parameters() if name in frozen]

    # ------------------------------------------------------------------ parameters
    def configure_trainable(self) -> None:
        """The paper's split: pretrained image-encoder weights and the text tower frozen, everything else trained."""
        for p in self.parameters():
            p.requires_grad_(True)
        for p in self.text_encoder.parameters():
            p.requires_grad_(False)
        for p in self.frozen_image_parameters():
            p.requires_grad_(False)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    # ------------------------------------------------------------------ pieces
    def encode_image(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Normalised windows (B, 1, D, H, W) -> 4 stage maps (B, C, d, h, w). The cacheable part."""
        expected = tuple(self.config.window_size)
        if tuple(image.shape[2:]) != expected or image.shape[1] != 1:
            raise ValueError(f"image window must be (B, 1, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got {tuple(image.shape)}")
        return self.image_encoder(image)

    def encode_text(self, prompts: Sequence[str | None]) -> tuple[TextFeatures | None, torch.Tensor]:
        """Prompt strings (None = no text) -> features of the non-empty ones and a (B,) has-text mask."""
        has_text = torch.tensor([p is not None for p in prompts], dtype=torch.bool)
        texts = [p for p in prompts if p is not None]
        features = self.text_encoder(texts) if texts else None
        return features, has_text

    def project_text(self, text: TextFeatures | None, has_text: torch.Tensor,
                     batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> words (B, L, C), padding mask (B, L), sentence (B, C); rows without text get the no-text tokens."""
        dim = self.config.neck_dim
        device = self.no_text_word.device
        has_text = has_text.to(device)
        length = max(1, text.tokens.shape[1] if text is not None else 1)
        words = self.no_text_word.expand(batch, length, dim).clone()
        padding = torch.ones(batch, length, dtype=torch.bool, device=device)
        padding[:, 0] = False
        sentence = self.no_text_sentence.expand(batch, dim).clone()
        if text is not None and len(text):
            if int(has_text.sum()) != len(text):
                raise ValueError(f"{len(text)} text embeddings for {int(has_text.sum())} prompts with text")
            text = text.to(device)
            proj_words, proj_sentence = self.projector(text)
            words = words.to(proj_words.dtype)
            sentence = sentence.to(proj_sentence.dtype)
            words[has_text] = proj_words
            padding[has_text] = text.padding_mask
            sentence[has_text] = proj_sentence
        return words, padding, sentence

    def decode(self, stages: list[torch.Tensor], image: torch.Tensor, text: TextFeatures | None,
               has_text: torch.Tensor, coords: torch.Tensor | None = None, labels: torch.Tensor | None = None,
               mask_input: torch.Tensor | None = None) -> DecoderOutput:
        """Prompt path for B prompts; ``stages`` and ``image`` must already have batch B (expand to share)."""
        batch = image.shape[0]
        words, padding, sentence = self.project_text(text, has_text, batch)
        fused = self.fusion(stages, words.to(stages[0].dtype), padding)
        sparse, dense = self.prompt_encoder(sentence, coords, labels, mask_input, batch)
        return self.mask_decoder(fused[3], self.prompt_encoder.dense_pe(), sparse.to(fused[3].dtype),
                                 dense.to(fused[3].dtype), fused[:3], image)

    def forward(self, image: torch.Tensor, text: Sequence[str | None] | TextFeatures | None = None,
                coords: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                mask_input: torch.Tensor | None = None, has_text: torch.Tensor | None = None) -> DecoderOutput:
        """One prompt per window. ``text``: strings/None per item, or precomputed TextFeatures (+ ``has_text``)."""
        batch = image.shape[0]
        if text is None:
            features, has_text = None, torch.zeros(batch, dtype=torch.bool)
        elif isinstance(text, TextFeatures):
            features = text
            has_text = torch.ones(batch, dtype=torch.bool) if has_text is None else has_text
        else:
            if len(text) != batch:
                raise ValueError(f"{len(text)} prompts for a batch of {batch} windows")
            features, has_text = self.encode_text(text)
        stages = self.encode_image(image)
        return self.decode(stages, image, features, has_text, coords, labels, mask_input)
