"""The value every text encoder returns, and the per-prompt cache that makes repeated prompts free."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass
class TextFeatures:
    """Per-token embeddings (B, L, C), a padding mask (B, L; True = ignore) and the sentence vector (B, C_s)."""

    tokens: torch.Tensor
    padding_mask: torch.Tensor
    pooled: torch.Tensor

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "TextFeatures":
        return TextFeatures(self.tokens.to(device=device, dtype=dtype), self.padding_mask.to(device),
                            self.pooled.to(device=device, dtype=dtype))

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def select(self, index: torch.Tensor | list[int]) -> "TextFeatures":
        index = torch.as_tensor(index, dtype=torch.long, device=self.tokens.device)
        return TextFeatures(self.tokens[index], self.padding_mask[index], self.pooled[index])

    @staticmethod
    def cat(parts: list["TextFeatures"]) -> "TextFeatures":
        return TextFeatures(torch.cat([p.tokens for p in parts]), torch.cat([p.padding_mask for p in parts]),
                            torch.cat([p.pooled for p in parts]))


class TextCache:
    """Least-recently-used store of single-prompt TextFeatures (kept on the CPU), keyed by the exact string."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, TextFeatures] = OrderedDict()

    def get(self, prompt: str) -> TextFeatures | None:
        item = self._items.get(prompt)
        if item is not None:
            self._items.move_to_end(prompt)
        return item

    def put(self, prompt: str, features: TextFeatures) -> None:
        self._items[prompt] = features
        self._items.move_to_end(prompt)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __contains__(self, prompt: str) -> bool:
        return prompt in self._items

    def __len__(self) -> int:
        return len(self._items)

    def state(self) -> dict[str, dict[str, torch.Tensor]]:
        """Plain tensors for torch.save: lets a GPU machine without the text model reuse CPU-made embeddings."""
        return {p: {"tokens": f.tokens, "padding_mask": f.padding_mask, "pooled": f.pooled}
                for p, f in self._items.items()}

    def load_state(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        for prompt, item in state.items():
            self.put(prompt, TextFeatures(item["tokens"], item["padding_mask"], item["pooled"]))
