"""Markups the user placed -> the clicks and box of a prompt, in world RAS millimetres.

Positions are read with the *World* accessors, so point lists and ROIs under a (possibly non-linear)
parent transform land where the user saw them. A click is negative ("exclude") when it sits in the
negative list, or when its label or description marks it so ("-", "neg", "negative", "exclude") --
handy for a single list edited by hand or by a script. Plain sequences of RAS points (and a pair of RAS
corners for the box) are accepted too, for scripts and the interactive loop.
"""
from __future__ import annotations

from .errors import InputError

NEGATIVE_MARKS = frozenset({"-", "neg", "negative", "exclude", "background"})


def _is_marked_negative(points_node, index: int) -> bool:
    label = (points_node.GetNthControlPointLabel(index) or "").strip().lower()
    description = (points_node.GetNthControlPointDescription(index) or "").strip().lower()
    return label in NEGATIVE_MARKS or description in NEGATIVE_MARKS


def _defined_points(points_node) -> list[tuple[int, tuple[float, float, float]]]:
    """(index, world RAS) of every placed control point; points still being placed are skipped."""
    placed = []
    for index in range(points_node.GetNumberOfControlPoints()):
        if points_node.GetNthControlPointPositionStatus(index) != points_node.PositionDefined:
            continue
        world = [0.0, 0.0, 0.0]
        points_node.GetNthControlPointPositionWorld(index, world)
        placed.append((index, (float(world[0]), float(world[1]), float(world[2]))))
    return placed


def points_from_markups(positive_node=None, negative_node=None) -> tuple[list[tuple[float, float, float]], list[bool]]:
    """Clicks and their labels (True = include) from a positive and an optional negative point list."""
    points: list[tuple[float, float, float]] = []
    labels: list[bool] = []
    for node, default_positive in ((positive_node, True), (negative_node, False)):
        if node is None:
            continue
        if isinstance(node, (list, tuple)):
            points.extend(tuple(float(c) for c in point) for point in node)
            labels.extend([default_positive] * len(node))
            continue
        if not node.IsA("vtkMRMLMarkupsFiducialNode"):
            raise InputError(f"'{node.GetName()}' is not a point list; use Markups > Point list for clicks")
        for index, world in _defined_points(node):
            points.append(world)
            labels.append(default_positive and not _is_marked_negative(node, index))
    return points, labels


def box_from_roi(roi_node) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
    """Two opposite RAS corners of the ROI's world bounding box; None when no ROI was placed.

    A rotated ROI gives its axis-aligned world bounds (the engine's box is axis-aligned).
    """
    if roi_node is None:
        return None
    if isinstance(roi_node, (list, tuple)):
        low, high = (tuple(float(c) for c in corner) for corner in roi_node)
        return tuple(map(min, low, high)), tuple(map(max, low, high))
    if not roi_node.IsA("vtkMRMLMarkupsROINode"):
        raise InputError(f"'{roi_node.GetName()}' is not a markups ROI; draw the box with Markups > ROI")
    if roi_node.GetNumberOfDefinedControlPoints() == 0:
        return None
    bounds = [0.0] * 6
    roi_node.GetRASBounds(bounds)
    low = (bounds[0], bounds[2], bounds[4])
    high = (bounds[1], bounds[3], bounds[5])
    if any(h - lo <= 0 for lo, h in zip(low, high)):
        raise InputError(f"ROI '{roi_node.GetName()}' has zero size along an axis; resize it to cover the structure")
    return low, high


def count_clicks(positive_node=None, negative_node=None, roi_node=None) -> str:
    """Short description for the status line, e.g. '2 include, 1 exclude clicks + a box'."""
    points, labels = points_from_markups(positive_node, negative_node)
    include = sum(labels)
    parts = []
    if points:
        parts.append(f"{include} include, {len(points) - include} exclude click(s)")
    if box_from_roi(roi_node) is not None:
        parts.append("a box")
    return " + ".join(parts) or "no clicks"


def set_points(points_node, points: list[tuple[float, float, float]]) -> None:
    """Make ``points_node`` show exactly ``points`` (world RAS), e.g. after Undo took a click back."""
    points_node.RemoveAllControlPoints()
    for point in points:
        points_node.AddControlPointWorld(*[float(c) for c in point])


def set_box(roi_node, corners) -> None:
    """Make ``roi_node`` show the axis-aligned box between two RAS corners (None: no box)."""
    if corners is None:
        roi_node.RemoveAllControlPoints()
        return
    low, high = (tuple(float(c) for c in corner) for corner in corners)
    roi_node.SetCenter([(lo + hi) / 2 for lo, hi in zip(low, high)])
    roi_node.SetSize([abs(hi - lo) for lo, hi in zip(low, high)])
