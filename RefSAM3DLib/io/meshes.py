"""Closed label masks from surface meshes whose vertices are voxel indices of an image.

Some public data sets publish labels only as STL surfaces (the outer shell of each label, often not watertight
and cut open where the structure leaves the image). ``mesh_to_mask`` rasterises such a shell in the image's own
voxel grid, caps it where the image border cuts it, closes small gaps and fills the interior, choosing the
smallest closing radius that seals it (a leaking shell fills to almost nothing, a sealed one to its volume).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RefSAM3DError


class MeshError(RefSAM3DError, ValueError):
    """A mesh file or mesh that cannot be read or does not fit its image; one line, with what to do."""


def read_stl(path: str | os.PathLike) -> np.ndarray:
    """Triangles of a binary or ASCII STL file as an (n, 3, 3) float64 array (triangle, corner, xyz)."""
    data = Path(path).read_bytes()
    if len(data) >= 84:
        count = int.from_bytes(data[80:84], "little")
        if len(data) == 84 + 50 * count:  # binary: the size is exact, whatever the header says
            record = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
            return np.frombuffer(data, record, count=count, offset=84)["corners"].astype(np.float64)
    text = data.decode("ascii", errors="replace")
    if not text.lstrip().lower().startswith("solid"):
        raise MeshError(f"{path}: neither a binary STL (size mismatch) nor an ASCII STL ('solid ...')")
    numbers = re.findall(r"^\s*vertex\s+(\S+)\s+(\S+)\s+(\S+)", text, flags=re.MULTILINE)
    if len(numbers) % 3:
        raise MeshError(f"{path}: ASCII STL with {len(numbers)} vertices, not a multiple of 3; "
                                f"the file is truncated")
    try:
        return np.asarray(numbers, dtype=np.float64).reshape(-1, 3, 3)
    except ValueError:
        raise MeshError(f"{path}: ASCII STL with a non-numeric vertex; the file is damaged") from None


def rasterise_triangles(triangles: np.ndarray, shape: tuple[int, int, int], offset=(0, 0, 0)) -> np.ndarray:
    """Voxels (of an array of ``shape`` whose index 0 is ``offset`` in mesh coordinates) that the triangles cover.

    Each triangle is sampled on a barycentric grid finer than half a voxel and each sample marks its nearest
    voxel; samples outside the array are dropped.
    """
    mask = np.zeros(shape, dtype=bool)
    if len(triangles) == 0:
        return mask
    triangles = np.asarray(triangles, dtype=np.float64) - np.asarray(offset, dtype=np.float64)
    longest = np.linalg.norm(triangles[:, [1, 2, 0]] - triangles, axis=2).max(axis=1)
    steps = np.maximum(1, np.ceil(longest / 0.4).astype(int))
    upper = np.asarray(shape) - 1
    for step in np.unique(steps):
        grid = np.array([(i, j) for i in range(step + 1) for j in range(step + 1 - i)], dtype=np.float64) / step
        weights = np.column_stack([1.0 - grid.sum(axis=1), grid])  # (samples, 3 corners)
        points = np.einsum("sc,tcd->tsd", weights, triangles[steps == step]).reshape(-1, 3)
        index = np.floor(points + 0.5).astype(np.int64)  # halves round up: independent of the offset
        inside = np.all((index >= 0) & (index <= upper), axis=1)
        index = index[inside]
        mask[index[:, 0], index[:, 1], index[:, 2]] = True
    return mask


def _ball(radius: int) -> np.ndarray:
    grid = np.mgrid[-radius:radius + 1, -radius:radius + 1, -radius:radius + 1]
    return (grid ** 2).sum(axis=0) <= radius * radius


@dataclass
class ShellFill:
    mask: np.ndarray
    radius: int  # closing radius (voxels) that sealed the shell; -1 when no radius did (mask = closed shell)
    shell_voxels: int
    sealed_gain: float  # filled interior / shell voxels at the chosen radius


def fill_shell(shell: np.ndarray, touches_border=(False,) * 6, max_radius: int = 3) -> ShellFill:
    """Solid mask enclosed by a voxel shell that may have small gaps and may be cut open at the array border.

    ``touches_border`` (low/high face of axes 0, 1, 2) says which array faces are the image border: a shell cut
    there is capped by filling its cross-section in that face. Gaps are closed by dilating with a ball of
    radius r = 0..max_radius before a 3D hole fill and eroding back (the shell itself is always kept). The
    interior a fill adds beyond plain closing ("gain", in shell sizes) collapses when the shell leaks, so the
    smallest r reaching half the best gain is used. A 3D fill keeps open tunnels (a vertebra's canal) open,
    which a slice-by-slice fill would not.
    """
    from scipy import ndimage

    shell = np.asarray(shell, dtype=bool)
    count = int(shell.sum())
    if count == 0:
        return ShellFill(shell.copy(), 0, 0, 0.0)
    capped = shell.copy()
    for face, touches in enumerate(touches_border):
        if not touches:
            continue
        axis, high = divmod(face, 2)
        index = [slice(None)] * 3
        index[axis] = -1 if high else 0
        cut = capped[tuple(index)]
        if cut.any():
            capped[tuple(index)] = ndimage.binary_fill_holes(ndimage.binary_closing(cut) | cut)
    pad = max_radius + 1
    padded = np.pad(capped, pad)
    tries = []
    for radius in range(0, max_radius + 1):
        if radius == 0:
            closed, filled = padded, ndimage.binary_fill_holes(padded)
        else:
            ball = _ball(radius)
            dilated = ndimage.binary_dilation(padded, ball)
            closed = ndimage.binary_erosion(dilated, ball) | padded
            filled = ndimage.binary_erosion(ndimage.binary_fill_holes(dilated), ball) | padded
        tries.append((float((filled & ~closed).sum()) / count, radius, filled))
    best_gain = max(t[0] for t in tries)
    if best_gain <= 0:
        chosen = (0.0, -1, padded)  # nothing enclosed at any radius: keep the shell as it is
    else:
        chosen = next(t for t in tries if t[0] >= 0.5 * best_gain)
    core = chosen[2][pad:-pad, pad:-pad, pad:-pad] | shell
    return ShellFill(core, chosen[1], count, chosen[0])


def mesh_to_mask(triangles: np.ndarray, shape: tuple[int, int, int], margin: int = 5) -> ShellFill:
    """Filled mask (full ``shape``) of a mesh whose vertices are voxel indices of that image."""
    shape = tuple(int(s) for s in shape)
    vertices = np.rint(triangles.reshape(-1, 3)).astype(np.int64)
    low = np.maximum(vertices.min(axis=0) - margin, 0)
    high = np.minimum(vertices.max(axis=0) + margin + 1, shape)
    if np.any(high <= low):
        raise MeshError(f"mesh bounding box {vertices.min(axis=0)}..{vertices.max(axis=0)} lies outside "
                                f"the image of shape {shape}; the mesh does not belong to this CT")
    box = tuple(int(h - lo) for lo, h in zip(low, high))
    shell = rasterise_triangles(triangles, box, offset=low)
    borders = []
    for axis in range(3):
        borders += [bool(low[axis] == 0 and shell.take(0, axis=axis).any()),
                    bool(high[axis] == shape[axis] and shell.take(-1, axis=axis).any())]
    result = fill_shell(shell, tuple(borders))
    full = np.zeros(shape, dtype=bool)
    full[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = result.mask
    result.mask = full
    return result


__all__ = ["MeshError", "ShellFill", "fill_shell", "mesh_to_mask", "rasterise_triangles", "read_stl"]
