"""Synthetic CT volumes and a Dice score shared by the delineation tests: a sphere of a chosen density in a
soft-tissue body, as a lesion or an organ would be seen on a 1 x 1 x 2 mm CT."""
from __future__ import annotations

import numpy as np

from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1.0, float(a.sum() + b.sum()))


def sphere_volume(hu: float, radius_mm: float) -> tuple[Volume, np.ndarray]:
    """A sphere in a soft-tissue body with air around it: 1 x 1 mm pixels, 2 mm slices, CT noise."""
    shape = (160, 140, 60)
    spacing = np.asarray([1.0, 1.0, 2.0])
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    body = ((i - 80) / 72.0) ** 2 + ((j - 70) / 60.0) ** 2 < 1
    rng = np.random.default_rng(int(abs(hu)))
    array = np.where(body, 40.0, -1000.0) + rng.normal(0, 12, shape)
    centre = np.asarray([70.0, 65.0, 30.0])
    inside = sum(((g - c) * s) ** 2 for g, c, s in zip((i, j, k), centre, spacing)) <= radius_mm ** 2
    array[inside] = hu + rng.normal(0, 12, int(inside.sum()))
    geometry = VolumeGeometry.from_spacing(shape, tuple(spacing), origin=(-80.0, -70.0, -60.0))
    return Volume(array.astype(np.int16), geometry, modality="CT", source="sphere"), inside
