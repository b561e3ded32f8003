"""Multi-head self-attention over a 3D token grid with decomposed relative position (d, h, w).

SAM's attention keeps separate relative-position tables for the rows (h) and columns (w) of its
2D windows; the 3D version adds a depth table. Loading code resamples SAM's h/w tables to this
module's window extent and seeds the new depth table from them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def relative_table(table: torch.Tensor, size: int) -> torch.Tensor:
    """Rows of a relative-position table for every (query, key) pair along one axis: (size, size, head_dim).

    A table of another length (e.g. SAM's 27 rows for 14-token windows) is linearly resampled first.
    """
    needed = 2 * size - 1
    if table.shape[0] != needed:
        table = F.interpolate(table.T[None], size=needed, mode="linear", align_corners=False)[0].T
    pos = torch.arange(size, device=table.device)
    return table[pos[:, None] - pos[None, :] + size - 1]


class Attention3D(nn.Module):
    def __init__(self, dim: int, num_heads: int, extent: tuple[int, int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        ed, eh, ew = extent
        self.rel_pos_d = nn.Parameter(torch.zeros(2 * ed - 1, self.head_dim))
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * eh - 1, self.head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * ew - 1, self.head_dim))

    def relative_bias(self, q: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """Decomposed relative-position bias (B*heads, N, N) from unscaled queries, as in SAM."""
        d, h, w = grid
        bh = q.shape[0]
        rq = q.reshape(bh, d, h, w, self.head_dim)
        rd = torch.einsum("bdhwc,dkc->bdhwk", rq, relative_table(self.rel_pos_d, d).to(q.dtype))
        rh = torch.einsum("bdhwc,hkc->bdhwk", rq, relative_table(self.rel_pos_h, h).to(q.dtype))
        rw = torch.einsum("bdhwc,wkc->bdhwk", rq, relative_table(self.rel_pos_w, w).to(q.dtype))
        bias = rd[..., :, None, None] + rh[..., None, :, None] + rw[..., None, None, :]
        return bias.reshape(bh, d * h * w, d * h * w)

    def forward(self, x: torch.Tensor, extra_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, d, h, w, C) one attention group per batch item; extra_mask: (B, N, N) additive or None."""
        b, d, h, w, c = x.shape
        n = d * h * w
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, hd)
        bias = self.relative_bias(q.reshape(b * self.num_heads, n, self.head_dim), (d, h, w))
        bias = bias.reshape(b, self.num_heads, n, n)
        if extra_mask is not None:
            bias = bias + extra_mask[:, None].to(bias.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.transpose(1, 2).reshape(b, d, h, w, c)
        return self.proj(out)
