"""Volumes on the wire: the raw voxels cut into slabs, each byte-shuffled and zlib-compressed on its own.

Byte shuffling (all first bytes of the slab's voxels, then all second bytes, ...) turns a CT's int16 values into
long runs that zlib's run-length strategy at level 1 compresses ~3.5x at several hundred MB/s. Independent
slabs let both sides use every core, and let the client send the first slabs while later ones are compressed.

    payload = for each slab: compressed length (4 bytes, big-endian) | compressed bytes
    spec    = {"dtype": "<i2", "shape": [I, J, K], "order": "F", "codec": "shuffle-zlib", "slab_bytes": 4194304}

The array ([i, j, k], RefSAM3D's ``Volume.array``) travels in its own memory order, C or Fortran (NIfTI readers give
Fortran order), and is rebuilt in that order: the engine's resampling runs on the array's own layout, and a
transposed copy made it slower on the server than on the client. Decoding checks every length against the spec
before allocating, so a lying header cannot make the server allocate or decompress more than it declared.
"""
from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

CODEC = "shuffle-zlib"
SLAB_BYTES = 4 << 20
ALLOWED_DTYPES = ("|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<f4", "<f8")
_LENGTH = struct.Struct(">I")


class VolumeDataError(ValueError):
    """The volume's description or bytes are unusable; the message says which and why."""


class VolumeTooLarge(ValueError):
    """The declared volume is larger than the receiver accepts."""


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def volume_spec(array: np.ndarray) -> dict:
    dtype = wire_dtype(array.dtype)
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    return {"dtype": dtype.str, "shape": [int(n) for n in array.shape], "order": order, "codec": CODEC,
            "slab_bytes": SLAB_BYTES - SLAB_BYTES % dtype.itemsize}


def wire_dtype(dtype: np.dtype) -> np.dtype:
    """The little-endian dtype an array travels as (bool as uint8; float16 as float32)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return np.dtype("|u1")
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype("<f4")
    wire = dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype
    if wire.str not in ALLOWED_DTYPES:
        raise VolumeDataError(f"voxel type {dtype} cannot be sent; convert the volume to an integer or float type")
    return wire


def _compress(piece: memoryview, itemsize: int) -> bytes:
    data = np.frombuffer(piece, np.uint8)
    if itemsize > 1:
        data = np.ascontiguousarray(data.reshape(-1, itemsize).T)
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    return compressor.compress(data) + compressor.flush()


def encode_slabs(array: np.ndarray, spec: dict | None = None) -> Iterator[bytes]:
    """The payload, piece by piece in order (slabs are compressed in parallel while earlier ones are sent)."""
    spec = spec or volume_spec(array)
    dtype = np.dtype(spec["dtype"])
    flat = np.asarray(array, dtype=dtype).ravel(order=spec.get("order", "C"))  # a view when already in that order
    raw = memoryview(flat).cast("B")
    step = int(spec["slab_bytes"])
    pieces = [raw[start:start + step] for start in range(0, len(raw), step)]
    with ThreadPoolExecutor(_threads(), thread_name_prefix="RefSAM3D-compress") as pool:
        for compressed in pool.map(_compress, pieces, [dtype.itemsize] * len(pieces)):
            yield _LENGTH.pack(len(compressed))
            yield compressed


def check_spec(spec: object, max_bytes: int) -> tuple[np.dtype, tuple[int, int, int], int]:
    """(dtype, shape, raw bytes) of a volume description; VolumeDataError / VolumeTooLarge otherwise."""
    if not isinstance(spec, dict):
        raise VolumeDataError("'volume' must be an object with dtype, shape, codec and slab_bytes")
    if spec.get("order", "C") not in ("C", "F"):
        raise VolumeDataError(f"volume order {spec.get('order')!r} must be 'C' or 'F'")
    if spec.get("codec") != CODEC:
        raise VolumeDataError(f"volume codec {spec.get('codec')!r} is not supported; use {CODEC!r}")
    if spec.get("dtype") not in ALLOWED_DTYPES:
        raise VolumeDataError(f"voxel type {spec.get('dtype')!r} is not supported; use one of "
                              f"{', '.join(ALLOWED_DTYPES)}")
    dtype = np.dtype(spec["dtype"])
    shape = spec.get("shape")
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise VolumeDataError(f"volume shape {shape!r} must be three positive integers [I, J, K]; send a 3D volume")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > max_bytes:
        raise VolumeTooLarge(f"the volume is {nbytes / 1e6:.0f} MB ({'x'.join(map(str, shape))} voxels of "
                             f"{dtype.name}); this server accepts at most {max_bytes / 1e6:.0f} MB per upload "
                             "(refsam3d serve --max-upload-mb); crop or resample it first")
    step = spec.get("slab_bytes")
    if not isinstance(step, int) or step <= 0 or step % dtype.itemsize or step > 1 << 30:
        raise VolumeDataError("'slab_bytes' must be a positive multiple of the voxel size (at most 1 GiB)")
    return dtype, (shape[0], shape[1], shape[2]), nbytes


class SlabDecoder:
    """Decodes a payload as its bytes arrive: each complete slab is decompressed on a worker thread at once, so the
    receiver decompresses while the sender is still compressing and sending. ``finish()`` returns the array."""

    def __init__(self, spec: object, max_bytes: int) -> None:
        self.dtype, self.shape, self.nbytes = check_spec(spec, max_bytes)
        self.order = spec.get("order", "C")  # type: ignore[union-attr]
        self.step = int(spec["slab_bytes"])  # type: ignore[index]
        self.count = -(-self.nbytes // self.step)
        self._out = np.empty(self.nbytes, np.uint8)
        self._pending = bytearray()
        self._index = 0
        self._pool = ThreadPoolExecutor(_threads(), thread_name_prefix="RefSAM3D-decompress")
        self._futures = []

    def feed(self, data: bytes | memoryview) -> None:
        self._pending += data
        at = 0
        while len(self._pending) - at >= _LENGTH.size and self._index < self.count:
            (length,) = _LENGTH.unpack_from(self._pending, at)
            end = at + _LENGTH.size + length
            if len(self._pending) < end:
                break
            self._futures.append(self._pool.submit(self._unpack, self._index, self._pending[at + _LENGTH.size:end]))
            self._index += 1
            at = end
        del self._pending[:at]  # what remains is at most one incomplete slab

    def finish(self) -> np.ndarray:
        try:
            for future in self._futures:
                future.result()
        finally:
            self.close()
        if self._index < self.count:
            where = f"inside slab {self._index + 1}" if self._pending else f"after slab {self._index}"
            raise VolumeDataError(f"the volume data ends {where} of {self.count} (upload cut short?); send the volume "
                                  "again")
        if self._pending:
            raise VolumeDataError(f"{len(self._pending)} bytes follow the {self.count} slabs the volume shape needs; "
                                  "the data does not match the declared shape and voxel type")
        return self._out.view(self.dtype).reshape(self.shape, order=self.order)

    def close(self) -> None:
        """Stop decoding (an upload refused or cut short); idempotent."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _unpack(self, index: int, record: bytearray) -> None:
        start = index * self.step
        size = min(self.step, self.nbytes - start)
        decompressor = zlib.decompressobj()
        try:
            data = decompressor.decompress(record, size + 1)
        except zlib.error as error:
            raise VolumeDataError(f"slab {index + 1} of the volume data is not valid zlib data ({error})") from None
        if len(data) != size or not decompressor.eof or decompressor.unused_data:
            raise VolumeDataError(f"slab {index + 1} of the volume data holds {len(data)} bytes where shape "
                                  f"{list(self.shape)} of {self.dtype.name} needs {size}; the data does not match the "
                                  "declared shape and voxel type")
        plain = np.frombuffer(data, np.uint8)
        if self.dtype.itemsize > 1:
            self._out[start:start + size].reshape(-1, self.dtype.itemsize)[:] = plain.reshape(self.dtype.itemsize,
                                                                                             -1).T
        else:
            self._out[start:start + size] = plain


def decode_slabs(spec: dict, payload: bytes | memoryview, max_bytes: int) -> np.ndarray:
    """The array a complete payload of ``encode_slabs`` holds; checks every slab's size against ``spec``."""
    decoder = SlabDecoder(spec, max_bytes)
    decoder.feed(payload)
    return decoder.finish()
