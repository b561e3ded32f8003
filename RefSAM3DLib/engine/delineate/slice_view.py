"""What the pretrained decoder is shown of one axial slice: a square region at 256 px, LiteMedSAM's scale.

LiteMedSAM was trained on whole slices whose longer side was resized to 256 and padded (``View.whole``), and
that is what it is shown. Zoomed views (a square around a small structure at 256 px) were measured and are not
used: with each slice's own box, Dice fell on every structure tried (lung1's nodule 0.79 -> 0.61-0.70 at 1.5-4x
its size, kidneys 0.93-0.96 -> 0.83-0.94). The one other view is ``View.centred``: a tight crop (a 128^3 liver
crop, 190-220 mm wide) shown padded in a wider field, as a whole CT slice would show it (``field_of_view``).
Each (slice, view) is encoded once per session (``slice_embeddings.py``).

Geometry: a view is a scale per slice axis (input pixels per slice pixel) and an integer offset of its top-left
corner in the resized slice; slice pixel (r, c) sits at input pixel ((r + .5) s_r - .5 - y0, (c + .5) s_c - .5
- x0), the align-corners-false convention of ``torch.nn.functional.interpolate``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

INPUT = 256  # LiteMedSAM's input side


@dataclass(frozen=True)
class View:
    scale_row: float  # input pixels per slice pixel, along rows
    scale_col: float
    y0: int  # top-left of the view in the resized slice (input pixels)
    x0: int
    resized: tuple[int, int]  # the whole slice resized to this (rows, cols)
    size: int = INPUT  # the view's side in input pixels

    @classmethod
    def whole(cls, shape: tuple[int, int], pixel_mm: tuple[float, float]) -> "View":
        """LiteMedSAM's own preprocessing: the longer side (in mm) to 256, padded bottom/right."""
        extent = max(shape[0] * pixel_mm[0], shape[1] * pixel_mm[1])
        return cls.at_mm_scale(shape, pixel_mm, INPUT / extent, 0.0, 0.0)

    @classmethod
    def centred(cls, shape: tuple[int, int], pixel_mm: tuple[float, float], field_mm: float) -> "View":
        """The whole slice in the middle of a square field ``field_mm`` wide (at least the slice's extent),
        padded all round: a tight crop shown at the scale of a whole CT slice (``field_of_view``)."""
        height, width = shape[0] * pixel_mm[0], shape[1] * pixel_mm[1]
        field_mm = max(field_mm, height, width)
        return cls.at_mm_scale(shape, pixel_mm, INPUT / field_mm, -(field_mm - height) / 2,
                               -(field_mm - width) / 2)

    @classmethod
    def at_mm_scale(cls, shape, pixel_mm, px_per_mm: float, top_mm: float, left_mm: float,
                    size: int = INPUT) -> "View":
        resized = (max(1, round(shape[0] * pixel_mm[0] * px_per_mm)), max(1, round(shape[1] * pixel_mm[1] * px_per_mm)))
        return cls(resized[0] / shape[0], resized[1] / shape[1], int(round(top_mm * px_per_mm)),
                   int(round(left_mm * px_per_mm)), resized, size)

    @property
    def key(self) -> tuple:
        return (round(self.scale_row, 6), round(self.scale_col, 6), self.y0, self.x0, self.size)

    # ------------------------------------------------------------------ slice <-> input pixels
    def to_input(self, rc: np.ndarray) -> np.ndarray:
        """Slice (row, col) (N, 2) -> input (y, x) (N, 2), continuous."""
        rc = np.atleast_2d(np.asarray(rc, dtype=float))
        return np.stack([(rc[:, 0] + 0.5) * self.scale_row - 0.5 - self.y0,
                         (rc[:, 1] + 0.5) * self.scale_col - 0.5 - self.x0], axis=1)

    def to_slice(self, yx: np.ndarray) -> np.ndarray:
        yx = np.atleast_2d(np.asarray(yx, dtype=float))
        return np.stack([(yx[:, 0] + 0.5 + self.y0) / self.scale_row - 0.5,
                         (yx[:, 1] + 0.5 + self.x0) / self.scale_col - 0.5], axis=1)

    def box_to_input(self, box_rc: np.ndarray) -> np.ndarray:
        """Slice box (r0, c0, r1, c1), inclusive pixel bounds -> input (x0, y0, x1, y1) as SAM wants it."""
        lo = self.to_input(np.asarray([[box_rc[0] - 0.5, box_rc[1] - 0.5]]))[0] + 0.5
        hi = self.to_input(np.asarray([[box_rc[2] + 0.5, box_rc[3] + 0.5]]))[0] - 0.5
        return np.asarray([lo[1], lo[0], hi[1], hi[0]])

    def slice_region(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The slice pixels this view shows."""
        lo = np.floor(self.to_slice(np.asarray([[-0.5, -0.5]]))[0] + 0.5).astype(int)
        hi = np.ceil(self.to_slice(np.asarray([[self.size - 0.5, self.size - 0.5]]))[0] - 0.5).astype(int) + 1
        return (slice(max(0, lo[0]), min(shape[0], hi[0])), slice(max(0, lo[1]), min(shape[1], hi[1])))

    # ------------------------------------------------------------------ pixels
    def render(self, unit_slice: np.ndarray) -> torch.Tensor:
        """A slice already scaled to [0, 1] -> the (1, size, size) encoder input (zeros where the view leaves it)."""
        t = torch.from_numpy(np.ascontiguousarray(unit_slice, dtype=np.float32))[None, None]
        if (t.shape[-2], t.shape[-1]) != self.resized:
            t = F.interpolate(t, size=self.resized, mode="bilinear", align_corners=False,
                              antialias=self.resized[0] < t.shape[-2])
        out = torch.zeros(1, self.size, self.size)
        ys, xs = max(0, self.y0), max(0, self.x0)
        ye, xe = min(self.resized[0], self.y0 + self.size), min(self.resized[1], self.x0 + self.size)
        if ye > ys and xe > xs:
            out[0, ys - self.y0:ye - self.y0, xs - self.x0:xe - self.x0] = t[0, 0, ys:ye, xs:xe]
        return out

    def logits_to_slice(self, logits: torch.Tensor, shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray]:
        """(size, size) logits -> (region, logits on the slice pixels of ``region``), bilinear."""
        region = self.slice_region(shape)
        rows = np.arange(region[0].start, region[0].stop)
        cols = np.arange(region[1].start, region[1].stop)
        if not len(rows) or not len(cols):
            return region, np.zeros((len(rows), len(cols)), np.float32)
        y = (rows + 0.5) * self.scale_row - 0.5 - self.y0
        x = (cols + 0.5) * self.scale_col - 0.5 - self.x0
        gy = torch.from_numpy((2 * y + 1) / self.size - 1).float()
        gx = torch.from_numpy((2 * x + 1) / self.size - 1).float()
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
        out = F.grid_sample(logits.float()[None, None], grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
        return region, out[0, 0].numpy()
