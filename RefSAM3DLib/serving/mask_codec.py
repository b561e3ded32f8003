"""Masks on the wire: the bounding box of the set voxels, and the box's bits packed eight to a byte, zlib level 1.

A kidney on a 512 x 512 x 300 grid (78 MB as bool) travels as a few kB; an empty mask as no bytes at all.
``WireMask`` is that compact form; clients keep it with a result, so a refinement can send the previous mask back
without encoding it again.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np


class MaskDataError(ValueError):
    """A mask's description or bytes do not fit the volume; the message says why."""


@dataclass(frozen=True)
class WireMask:
    shape: tuple[int, int, int]  # the full grid (the volume's)
    box: tuple[tuple[int, int, int], tuple[int, int, int]] | None  # [low, high) of the set voxels, None if empty
    data: bytes  # zlib(packbits(mask[box])), C order

    def describe(self, offset: int) -> dict:
        """The header entry for this mask when its bytes start at ``offset`` in the payload."""
        box = None if self.box is None else [list(self.box[0]), list(self.box[1])]
        return {"box": box, "offset": offset, "length": len(self.data)}


def bounding_box(mask: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """[low, high) per axis of the set voxels, or None; each pass after the first scans only the box so far."""
    along_i = np.flatnonzero(mask.any(axis=(1, 2)))
    if not len(along_i):
        return None
    i0, i1 = int(along_i[0]), int(along_i[-1]) + 1
    part = mask[i0:i1]
    along_j = np.flatnonzero(part.any(axis=(0, 2)))
    j0, j1 = int(along_j[0]), int(along_j[-1]) + 1
    along_k = np.flatnonzero(part[:, j0:j1].any(axis=(0, 1)))
    k0, k1 = int(along_k[0]), int(along_k[-1]) + 1
    return (i0, j0, k0), (i1, j1, k1)


def encode_mask(mask: np.ndarray) -> WireMask:
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise MaskDataError(f"a mask must be 3D, got shape {mask.shape}")
    box = bounding_box(mask)
    if box is None:
        return WireMask(tuple(mask.shape), None, b"")
    crop = mask[box[0][0]:box[1][0], box[0][1]:box[1][1], box[0][2]:box[1][2]]
    return WireMask(tuple(mask.shape), box, zlib.compress(np.packbits(crop, axis=None).tobytes(), 1))


def wire_mask_from(description: object, data: bytes | memoryview, shape: tuple[int, int, int]) -> WireMask:
    """Check a mask description (``WireMask.describe``) against the volume ``shape``."""
    if not isinstance(description, dict):
        raise MaskDataError("a mask must be described by an object with box, offset and length")
    box = description.get("box")
    if box is None:
        if len(data):
            raise MaskDataError("an empty mask (box null) must carry no bytes")
        return WireMask(tuple(shape), None, b"")
    try:
        low = tuple(int(v) for v in box[0])
        high = tuple(int(v) for v in box[1])
    except (TypeError, ValueError, IndexError):
        raise MaskDataError("a mask box must be [[i0, j0, k0], [i1, j1, k1]] of integers") from None
    if len(low) != 3 or len(high) != 3 or not all(0 <= a < b <= n for a, b, n in zip(low, high, shape)):
        raise MaskDataError(f"mask box {[list(low), list(high)]} does not lie inside the volume {list(shape)}")
    return WireMask(tuple(shape), (low, high), bytes(data))


def decode_mask(wire: WireMask) -> np.ndarray:
    """The full bool mask on the grid ``wire.shape``."""
    mask = np.zeros(wire.shape, dtype=bool)
    if wire.box is None:
        return mask
    low, high = wire.box
    size = tuple(b - a for a, b in zip(low, high))
    count = int(np.prod(size))
    decompressor = zlib.decompressobj()
    try:
        packed = decompressor.decompress(wire.data, (count + 7) // 8 + 1)
    except zlib.error as error:
        raise MaskDataError(f"the mask bytes are not valid zlib data ({error})") from None
    if len(packed) != (count + 7) // 8 or not decompressor.eof:
        raise MaskDataError(f"the mask bytes unpack to {len(packed)} bytes where its box needs {(count + 7) // 8}")
    bits = np.unpackbits(np.frombuffer(packed, np.uint8), count=count).astype(bool).reshape(size)
    mask[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = bits
    return mask
