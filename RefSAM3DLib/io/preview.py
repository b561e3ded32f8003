"""A PNG quick-look of a result: three orthogonal slices with coloured overlays, for reports and sanity checks.

The array is first reoriented to the closest RAS axes, so the picture is the same for LPS, RAS or oblique
input, and shown in radiological convention (patient right on screen left, anterior up, superior up) with
the pixel aspect ratio taken from the voxel spacing.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .atomic import atomic_output, check_writable
from .segments import SegmentOutput
from .volume import Volume

CT_SOFT_TISSUE_WINDOW = (-160.0, 240.0)
OVERLAY_ALPHA = 0.45


@dataclass
class PreviewPlane:
    """One panel as it appears on screen: rows top->bottom, columns left->right, radiological convention."""

    title: str
    image: np.ndarray  # (rows, columns) intensities
    overlay: np.ndarray | None  # (rows, columns, 4) RGBA of the found segments, or None
    aspect: float  # pixel height / width in mm
    side_labels: tuple[str, str, str, str]  # patient directions at screen left, right, top, bottom


def preview_planes(volume: Volume, segments: Sequence[SegmentOutput]) -> list[PreviewPlane]:
    """Axial, coronal and sagittal slices through the first found segment's centroid (else the volume centre)."""
    ornt = nib.orientations.io_orientation(volume.geometry.affine)
    image = nib.orientations.apply_orientation(np.asarray(volume.array), ornt)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = volume.geometry.spacing  # input axis a became output axis ornt[a, 0]
    found = [s for s in segments if _is_found(s)]
    masks = [nib.orientations.apply_orientation(np.asarray(s.mask, dtype=bool), ornt) for s in found]
    x, y, z = _centre(masks[0]) if masks else tuple(n // 2 for n in image.shape)
    views = [  # title, cut of a RAS-ordered array, row and column spacing, patient directions at the screen edges
        (f"axial (slice {z})", lambda a: a[:, :, z], spacing[1], spacing[0], ("R", "L", "A", "P")),
        (f"coronal (slice {y})", lambda a: a[:, y, :], spacing[2], spacing[0], ("R", "L", "S", "I")),
        (f"sagittal (slice {x})", lambda a: a[x, :, :], spacing[2], spacing[1], ("A", "P", "S", "I")),
    ]
    return [PreviewPlane(title, _screen(cut(image)), _overlay([_screen(cut(m)) for m in masks], [s.color for s in found]),
                         float(row_mm / column_mm), labels)
            for title, cut, row_mm, column_mm, labels in views]


def write_preview_png(path: str | os.PathLike, volume: Volume, segments: Sequence[SegmentOutput],
                      overwrite: bool = False) -> Path:
    """Render ``preview_planes`` with a legend of found (with volume) and "not found" segments."""
    path = check_writable(path, overwrite)
    low, high = display_window(volume)
    figure = Figure(figsize=(13, 5.4), dpi=100)
    FigureCanvasAgg(figure)
    for ax, plane in zip(figure.subplots(1, 3), preview_planes(volume, segments)):
        ax.imshow(plane.image, cmap="gray", vmin=low, vmax=high, aspect=plane.aspect, interpolation="nearest")
        if plane.overlay is not None:
            ax.imshow(plane.overlay, aspect=plane.aspect, interpolation="nearest")
        _label_sides(ax, plane.side_labels)
        ax.set_title(plane.title, fontsize=10)
        ax.set_axis_off()
    handles = [Patch(facecolor=s.color, edgecolor="black", label=f"{s.name}: {_volume_text(s, volume)}")
               for s in segments if _is_found(s)]
    handles += [Patch(facecolor="none", edgecolor="gray", label=f"{s.name}: not found")
                for s in segments if not _is_found(s)]
    if handles:
        figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=9, frameon=False)
    figure.suptitle(f"{volume.name} - {volume.geometry.describe()} - window {low:g}..{high:g}", fontsize=10)
    figure.subplots_adjust(left=0.02, right=0.98, top=0.88, bottom=0.14 if handles else 0.04, wspace=0.06)
    with atomic_output(path, overwrite) as temporary:
        figure.savefig(temporary, format="png")
    return path


def display_window(volume: Volume) -> tuple[float, float]:
    """Soft-tissue window for CT-like data (air near -1000 HU), else the 1st..99th percentile of the voxels."""
    values = np.asarray(volume.array).ravel()
    if values.size > 2_000_000:
        values = values[:: values.size // 1_000_000]
    values = values[np.isfinite(values)].astype(np.float64)
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [1, 99])
    modality = (volume.modality or "").upper()
    looks_like_ct = modality == "CT" or (not modality and values.min() <= -900 and high < 4000)
    if looks_like_ct:
        return CT_SOFT_TISSUE_WINDOW
    return float(low), float(high if high > low else low + 1)


def _screen(plane: np.ndarray) -> np.ndarray:
    """A RAS plane (first axis toward R/A, second toward A/S) as screen rows x columns, radiological view.

    Transposing puts the second axis on rows; flipping both puts A or S at the top and R (or A) on the left.
    """
    return plane.T[::-1, ::-1]


def _overlay(masks: list[np.ndarray], colors: list) -> np.ndarray | None:
    if not masks:
        return None
    rgba = np.zeros(masks[0].shape + (4,), dtype=np.float32)
    for mask, color in zip(masks, colors):  # later segments are drawn on top, as in the label map
        rgba[mask, :3] = np.asarray(color, dtype=np.float32)[:3]
        rgba[mask, 3] = OVERLAY_ALPHA
    return rgba


def _centre(mask: np.ndarray) -> tuple[int, int, int]:
    indices = np.argwhere(mask)
    centre = np.round(indices.mean(axis=0)).astype(int)
    # a curved structure's centroid may miss it; use the nearest voxel that belongs to it
    nearest = indices[np.argmin(np.sum((indices - centre) ** 2, axis=1))]
    return tuple(int(v) for v in nearest)


def _label_sides(ax, labels: tuple[str, str, str, str]) -> None:
    left, right, top, bottom = labels
    style = {"color": "yellow", "fontsize": 9, "transform": ax.transAxes, "fontweight": "bold"}
    ax.text(0.01, 0.5, left, ha="left", va="center", **style)
    ax.text(0.99, 0.5, right, ha="right", va="center", **style)
    ax.text(0.5, 0.99, top, ha="center", va="top", **style)
    ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **style)


def _is_found(segment: SegmentOutput) -> bool:
    return bool(segment.found) and bool(np.any(segment.mask))


def _volume_text(segment: SegmentOutput, volume: Volume) -> str:
    millilitres = float(np.count_nonzero(segment.mask)) * volume.geometry.voxel_volume_ml
    return f"{millilitres:.1f} ml"
