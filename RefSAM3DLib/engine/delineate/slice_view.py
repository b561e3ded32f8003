"""What the pretrained decoder is shown of one axial slice: a square region at 256 px, LiteMedSAM's scale.

LiteMedSAM was trained on whole slices whose longer side was resized to 256 and padded (``View.whole``). A
small structure then covers few of the 64 x 64 embedding cells, so a prompt may also use a zoomed view: a
square region around it, resized to the same 256 px (nnInteractive-style field of view). Views are snapped to
a coarse ladder of sizes and positions so that nearby prompts share them, and each (slice, view) is encoded
once per session (``slice_embeddings.py``).

Geometry: a view is a scale per slice axis (input pixels per slice pixel) and an integer offset of its top-left
corner in the resized slice; slice pixel (r, c) sits at input pixel ((r + .5) s_r - .5 - y0, (c + .5) s_c - .5
- x0), the align-corners-false convention of ``torch.nn.functional.interpolate``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

INPUT = 256  # LiteMedSAM's input side
SIZE_LADDER_BASE_MM = 48.0  # zoomed views are this times a power of sqrt(2) wide
SIZE_STEP = math.sqrt(2.0)


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
    def around(cls, shape: tuple[int, int], pixel_mm: tuple[float, float], centre_rc: tuple[float, float],
               side_mm: float) -> "View":
        """A zoomed view about ``side_mm`` wide centred near ``centre_rc``, snapped so nearby requests share it:
        its size to a sqrt(2) ladder (rounded up), its centre to an eighth of its size. Never wider than the
        whole slice's view."""
        extent = max(shape[0] * pixel_mm[0], shape[1] * pixel_mm[1])
        step = max(0, math.ceil(math.log(max(side_mm, 1e-3) / SIZE_LADDER_BASE_MM, SIZE_STEP) - 1e-9))
        side = SIZE_LADDER_BASE_MM * SIZE_STEP ** step
        if side >= extent:
            return cls.whole(shape, pixel_mm)
        grid = side / 8.0
        centre_mm = [round(((centre_rc[a] + 0.5) * pixel_mm[a]) / grid) * grid for a in range(2)]
        return cls.at_mm_scale(shape, pixel_mm, INPUT / side, centre_mm[0] - side / 2, centre_mm[1] - side / 2)

    @classmethod
    def at_mm_scale(cls, shape, pixel_mm, px_per_mm: float, top_mm: float, left_mm: float,
                    size: int = INPUT) -> "View":
        resized = (max(1, round(shape[0] * pixel_mm[0] * px_per_mm)), max(1, round(shape[1] * pixel_mm[1] * px_per_mm)))
        return cls(resized[0] / shape[0], resized[1] / shape[1], int(round(top_mm * px_per_mm)),
                   int(round(left_mm * px_per_mm)), resized, size)

    @classmethod
    def window_of(cls, shape, pixel_mm, centre_rc, size: int) -> "View":
        """A ``size`` px window of the whole-slice view (same scale as LiteMedSAM's preprocessing) around
        ``centre_rc``, snapped to an eighth of its size: the object looks as in training, at a fraction of
        the encoder's cost."""
        whole = cls.whole(shape, pixel_mm)
        if size >= INPUT:
            return whole
        step = size // 8
        y = (centre_rc[0] + 0.5) * whole.scale_row - size / 2
        x = (centre_rc[1] + 0.5) * whole.scale_col - size / 2
        y0 = int(np.clip(round(y / step) * step, 0, max(0, whole.resized[0] - size)))
        x0 = int(np.clip(round(x / step) * step, 0, max(0, whole.resized[1] - size)))
        return cls(whole.scale_row, whole.scale_col, y0, x0, whole.resized, size)

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
