"""Prompts on the model grid: clicks and boxes from RAS millimetres to model voxels, checked, and the
windows that a click-or-box prompt is decoded in.

Checks give the user something to act on: a click outside the image, an include click in the air
outside the body (CT), a box whose centre is off the image.
"""
from __future__ import annotations

import numpy as np

from .errors import PromptError
from .prompts import Prompt
from .sliding_window import Start, contains, focus_window, grid_windows


class PromptGeometry:
    def __init__(self, volume, space, config, grid_shape: tuple[int, int, int], modality: str, outside_air) -> None:
        self.volume = volume
        self.space = space
        self.config = config
        self.window = tuple(config.window_size)
        self.grid_shape = grid_shape
        self.modality = modality
        self._outside_air = outside_air  # () -> bool mask on the model grid (CT)

    def points(self, prompt: Prompt) -> tuple[np.ndarray, np.ndarray]:
        """-> (N, 3) continuous model voxels and (N,) labels 1 include / 0 exclude."""
        pts = prompt.points_array()
        if len(pts):
            inside = self.volume.geometry.contains_ras(pts)
            if not inside.all():
                bad = pts[~inside][0]
                raise PromptError(f"point ({bad[0]:.1f}, {bad[1]:.1f}, {bad[2]:.1f}) mm RAS is outside the volume "
                                  f"({self.volume.geometry.describe()}); click inside the image")
        coords = self.space.ras_to_model(pts) if len(pts) else np.zeros((0, 3))
        labels = np.asarray([1 if p else 0 for p in prompt.point_labels], dtype=np.int64)
        if self.modality == "CT" and len(pts):
            outside = self._outside_air()
            cell = np.clip(np.round(coords).astype(int), 0, np.asarray(outside.shape) - 1)
            air = (labels == 1) & outside[tuple(cell.T)]
            if air.any():
                bad = pts[air][0]
                raise PromptError(f"the include click at ({bad[0]:.1f}, {bad[1]:.1f}, {bad[2]:.1f}) mm RAS is in the "
                                  f"air outside the body; click inside the structure you want")
        return coords, labels

    def box(self, prompt: Prompt) -> np.ndarray | None:
        """-> (2, 3) low / high model-voxel corners, clipped to the grid, or None."""
        corners = prompt.box_corners()
        if corners is None:
            return None
        if not self.volume.geometry.contains_ras(corners.mean(0, keepdims=True)).all():
            raise PromptError("the box centre is outside the volume; draw the box on the image")
        model = self.space.ras_to_model(corners)
        lo, hi = model.min(0), model.max(0)
        valid = np.asarray(self.space.model_shape) - 1
        return np.stack([np.clip(lo, 0, valid), np.clip(hi, 0, valid)])

    def focus_windows(self, coords: np.ndarray, box: np.ndarray | None) -> list[Start]:
        """Windows that cover the box (tiled if it is larger than one) and every click."""
        snap = max(1, self.config.patch_size * 2)
        centres = []
        if box is not None:
            size = box[1] - box[0] + 1
            if np.all(size <= np.asarray(self.window)):
                centres.append((box[0] + box[1]) / 2)
            else:
                sub = grid_windows(tuple(int(np.ceil(s)) for s in size), self.window, 0.25)
                centres += [box[0] + np.asarray(s) + np.asarray(self.window) / 2 for s in sub]
        starts: list[Start] = [focus_window(c, self.grid_shape, self.window, snap) for c in centres]
        remaining = list(coords)
        while remaining:
            start = focus_window(remaining[0], self.grid_shape, self.window, snap)
            starts.append(start)
            inside = contains(start, self.window, np.asarray(remaining))
            inside[0] = True  # its window is chosen (a click on the grid's very edge may sit a fraction outside)
            remaining = [c for c, keep in zip(remaining, inside) if not keep]
        return list(dict.fromkeys(starts))

    def in_window(self, start: Start, clicks: tuple[np.ndarray, np.ndarray],
                  box: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The clicks inside a window and the box clipped to it, in window-relative voxels (box corners 2 / 3)."""
        coords, labels = clicks
        inside = contains(start, self.window, coords) if len(coords) else np.zeros(0, dtype=bool)
        c = coords[inside] - np.asarray(start)
        lab = labels[inside]
        if box is not None:
            lo = np.asarray(start)
            hi = lo + np.asarray(self.window) - 1
            if np.all(box[1] >= lo) and np.all(box[0] <= hi):
                corners = np.stack([np.maximum(box[0], lo), np.minimum(box[1], hi)]) - lo
                c = np.concatenate([c, corners])
                lab = np.concatenate([lab, [2, 3]])
        return c.reshape(-1, 3), lab.astype(np.int64)
