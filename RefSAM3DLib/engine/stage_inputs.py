"""What one stage says, in the terms of the next: a located region (RAS and patient voxels, from the locate stage)
as a region prompt in the delineation stage's (z, row, col) slice coordinates."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .delineate import RegionPrompt
from .delineate.axial_slices import AxialSlices
from .locate import Region
from .locate.registration import GRID_MM


def region_prompt(region: Region, slices: AxialSlices) -> RegionPrompt:
    shape = np.asarray(slices.shape)
    lo, hi = region.lo_ijk, region.hi_ijk
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    zrc = slices.from_ijk(corners)
    widest = slices.from_ras(region.widest_ras)
    widest_box = np.asarray([widest[:, 1].min(), widest[:, 2].min(), widest[:, 1].max(), widest[:, 2].max()])
    coarse = np.zeros(slices.shape, dtype=bool)
    cells = np.round(slices.from_ras(region.mask_points_ras)).astype(int)
    cells = cells[np.all((cells >= 0) & (cells < shape), axis=1)]
    coarse[tuple(cells.T)] = True
    cell = np.asarray([GRID_MM / slices.slice_mm, GRID_MM / slices.pixel_mm[0], GRID_MM / slices.pixel_mm[1]])
    size = np.maximum(1, np.ceil(cell)).astype(int)
    if coarse.any():
        nz = np.argwhere(coarse)
        box = tuple(slice(max(0, a - s), b + s + 1) for a, b, s in zip(nz.min(0), nz.max(0), size))
        coarse[box] = ndimage.binary_dilation(coarse[box], np.ones(size, dtype=bool))  # fill the 4 mm cells
    centre = slices.from_ras(region.widest_ras.mean(0, keepdims=True))[0]
    continues = []
    for direction in region.cut_ras:
        step = slices.from_ras((region.widest_ras.mean(0) + 10.0 * direction)[None])[0] - centre
        axis = int(np.argmax(np.abs(step)))
        continues.append((axis, int(np.sign(step[axis]))))
    return RegionPrompt(zrc.min(0), zrc.max(0), float(widest[:, 0].mean()), widest_box, coarse, continues,
                        region.tentative, region.bone, region.divides_below, region.tube,
                        region.one_tissue)
