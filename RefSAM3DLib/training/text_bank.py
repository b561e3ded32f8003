"""Precomputed text embeddings of every training phrasing.

The text encoder is frozen, so the embeddings of all phrasings the prompt simulator can produce
are computed once (on the machine that has the text model) and saved; a GPU machine without the
90 MB MiniLM weights trains from this file alone.
"""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from ..modeling.refsam3d import RefSAM3D


def build_text_bank(model: RefSAM3D, phrases: list[str], batch: int = 64, progress: bool = True) -> None:
    """Fill the model's text cache with ``phrases`` (skips those already cached)."""
    todo = [p for p in dict.fromkeys(phrases) if p not in model.text_encoder.cache]
    for i in tqdm(range(0, len(todo), batch), desc="text embeddings", disable=not progress or not todo):
        model.text_encoder(todo[i:i + batch])


def save_text_bank(model: RefSAM3D, path: str | Path) -> None:
    torch.save(model.text_encoder.cache.state(), path)


def load_text_bank(model: RefSAM3D, path: str | Path) -> int:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.text_encoder.cache.capacity = max(model.text_encoder.cache.capacity, len(state) + 1024)
    model.text_encoder.cache.load_state(state)
    return len(state)
