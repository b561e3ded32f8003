"""Is an image file whole? Header promises versus the bytes actually on disk, checked before the voxels are used.

ITK fills a truncated gzip stream with zeros, silently replaces a zero voxel spacing in a NIfTI header by 1 and
reads NaN voxels of a floating-point NIfTI as 0, so a damaged file would otherwise be segmented as if it were
fine. This module reads each format's header
itself (NIfTI via nibabel, NRRD and MetaImage as text) and checks that the data is there to the last byte and
that the header's spacing is usable. Each problem is one ``VolumeReadError`` line.
"""
from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from .errors import VolumeReadError

_CHUNK = 1 << 20
_REDOWNLOAD = "the file is damaged or was not copied completely; copy or export it again"


def check_file_complete(path: Path) -> None:
    """Raise ``VolumeReadError`` if ``path`` (NIfTI, NRRD or MetaImage) is truncated or has an unusable spacing."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        _check_nifti(path)
    elif name.endswith(".nrrd"):
        _check_nrrd(path)
    elif name.endswith(".mha"):
        _check_metaimage(path)


# ---------------------------------------------------------------------------------------------- NIfTI
def _check_nifti(path: Path) -> None:
    header = _nifti_header(path)
    if header is None:
        return  # not a NIfTI header we understand; ITK reports it
    dims, bitpix, pixdim, vox_offset, datatype = header
    if not np.all(np.isfinite(pixdim)) or np.any(pixdim[: min(3, len(dims))] <= 0):
        spacing = ", ".join(f"{v:g}" for v in pixdim)
        raise VolumeReadError(path, f"voxel spacing ({spacing}) mm in the header is not positive",
                              "fix the header's pixdim (e.g. re-export the image)")
    expected = vox_offset + int(np.prod(dims, dtype=np.int64)) * bitpix // 8
    available = _gzip_length(path) if _is_gzip(path) else path.stat().st_size
    _fail_if_short(path, available, expected)
    if datatype in _NIFTI_FLOAT_TYPES:
        import nibabel as nib

        from .checks import check_finite

        check_finite(np.asanyarray(nib.load(str(path)).dataobj), path)  # as stored: ITK would show NaN as 0


_NIFTI_FLOAT_TYPES = (16, 64)  # float32, float64


def _nifti_header(path: Path) -> tuple[list[int], int, np.ndarray, int, int] | None:
    """(dims, bitpix, spatial pixdim, data offset, datatype code) read from the raw NIfTI-1/2 header, as written on disk.

    Read here rather than with nibabel, which replaces a zero pixdim by 1 while loading.
    """
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as handle:
            raw = handle.read(540)
    except (OSError, EOFError, zlib.error):
        raise VolumeReadError(path, "not a readable NIfTI file (damaged compressed data)", _REDOWNLOAD) from None
    for order in "<>":
        size = np.frombuffer(raw[:4], dtype=f"{order}i4")[0] if len(raw) >= 4 else 0
        if size == 348 and len(raw) >= 348:
            dim = np.frombuffer(raw[40:56], dtype=f"{order}i2").astype(np.int64)
            datatype = int(np.frombuffer(raw[70:72], dtype=f"{order}i2")[0])
            bitpix = int(np.frombuffer(raw[72:74], dtype=f"{order}i2")[0])
            pixdim = np.frombuffer(raw[80:92], dtype=f"{order}f4").astype(np.float64)
            offset = int(np.frombuffer(raw[108:112], dtype=f"{order}f4")[0])
            break
        if size == 540 and len(raw) >= 540:
            datatype = int(np.frombuffer(raw[12:14], dtype=f"{order}i2")[0])
            bitpix = int(np.frombuffer(raw[14:16], dtype=f"{order}i2")[0])
            dim = np.frombuffer(raw[16:80], dtype=f"{order}i8")
            pixdim = np.frombuffer(raw[112:136], dtype=f"{order}f8").astype(np.float64)
            offset = int(np.frombuffer(raw[168:176], dtype=f"{order}i8")[0])
            break
    else:
        return None
    rank = int(dim[0])
    if not 1 <= rank <= 7 or bitpix <= 0:
        raise VolumeReadError(path, "not a readable NIfTI file (damaged header)", _REDOWNLOAD)
    dims = [max(int(d), 1) for d in dim[1:rank + 1]]
    return dims, bitpix, pixdim, offset, datatype


# ---------------------------------------------------------------------------------------------- NRRD
def _check_nrrd(path: Path) -> None:
    fields, data_offset = _text_header(path, b"\n\n")
    if fields is None:
        return  # not a NRRD we can parse here; ITK decides
    sizes = [int(v) for v in fields.get("sizes", "").split() if v.lstrip("-").isdigit()]
    if "data file" in fields or "datafile" in fields or not sizes:
        return  # detached data (.nhdr style): ITK reports a missing data file itself
    bytes_per_voxel = _NRRD_TYPES.get(fields.get("type", "").strip().lower())
    if bytes_per_voxel is None:
        return
    _check_spacing_text(path, fields.get("space directions", ""), fields.get("spacings", ""))
    expected = int(np.prod(sizes, dtype=np.int64)) * bytes_per_voxel
    encoding = fields.get("encoding", "raw").strip().lower()
    if encoding in ("gzip", "gz"):
        available = _zlib_length(path, data_offset, wbits=zlib.MAX_WBITS | 16)
    elif encoding == "raw":
        available = path.stat().st_size - data_offset
    else:
        return
    _fail_if_short(path, available, expected)


_NRRD_TYPES = {name: size for size, names in {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort", "unsigned short",
        "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
        "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "double"),
}.items() for name in names}


def _check_spacing_text(path: Path, directions: str, spacings: str) -> None:
    """NRRD 'space directions' vectors (or 'spacings') must have a positive length for each spatial axis."""
    vectors = re.findall(r"\(([^)]*)\)", directions)
    lengths = []
    for vector in vectors:
        try:
            lengths.append(float(np.linalg.norm([float(v) for v in vector.split(",")])))
        except ValueError:
            return
    if not vectors and spacings:
        try:
            lengths = [abs(float(v)) for v in spacings.split() if v.lower() != "nan"]
        except ValueError:
            return
    if any(not np.isfinite(v) or v <= 0 for v in lengths):
        raise VolumeReadError(path, "a voxel spacing in the header is zero", "fix the header's space directions")


# ---------------------------------------------------------------------------------------------- MetaImage
_META_TYPES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
               "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
               "MET_DOUBLE": 8}


def _check_metaimage(path: Path) -> None:
    fields, data_offset = _text_header(path, b"ElementDataFile", meta=True)
    if fields is None or fields.get("elementdatafile", "").strip().upper() != "LOCAL":
        return
    spacing = fields.get("elementspacing") or fields.get("elementsize") or ""
    try:
        values = [float(v) for v in spacing.split()]
    except ValueError:
        values = []
    if any(not np.isfinite(v) or v <= 0 for v in values):
        raise VolumeReadError(path, f"voxel spacing ({spacing.strip()}) in the header is not positive",
                              "fix the header's ElementSpacing")
    try:
        sizes = [int(v) for v in fields.get("dimsize", "").split()]
        channels = int(fields.get("elementnumberofchannels", "1"))
    except ValueError:
        return
    bytes_per_voxel = _META_TYPES.get(fields.get("elementtype", "").strip().upper())
    if not sizes or bytes_per_voxel is None:
        return
    expected = int(np.prod(sizes, dtype=np.int64)) * bytes_per_voxel * channels
    if fields.get("compresseddata", "false").strip().lower() == "true":
        available = _zlib_length(path, data_offset, wbits=zlib.MAX_WBITS)
    else:
        available = path.stat().st_size - data_offset
    _fail_if_short(path, available, expected)


# ---------------------------------------------------------------------------------------------- streams
def _fail_if_short(path: Path, available: int, expected: int) -> None:
    if available < 0:
        raise VolumeReadError(path, "truncated (the compressed image data ends early or is corrupt)", _REDOWNLOAD)
    if available < expected:
        raise VolumeReadError(path, f"truncated ({available} of {expected} bytes of image data)", _REDOWNLOAD)


def _text_header(path: Path, end: bytes, meta: bool = False) -> tuple[dict[str, str] | None, int]:
    """Key/value lines of a text header and the byte offset where the data starts (None if not found)."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if meta:
        start = head.find(end)
        if start < 0:
            return None, 0
        line_end = head.find(b"\n", start)
        if line_end < 0:
            return None, 0
        text, offset = head[:line_end].decode("latin-1"), line_end + 1
        separator = "="
    else:
        if not head.startswith(b"NRRD"):
            return None, 0
        stop = head.find(end)
        crlf = head.find(b"\r\n\r\n")
        if stop < 0 and crlf < 0:
            return None, 0
        if stop < 0 or (0 <= crlf < stop):
            stop, end = crlf, b"\r\n\r\n"
        text, offset = head[:stop].decode("latin-1"), stop + len(end)
        separator = ":"
    fields = {}
    for line in text.splitlines()[(0 if meta else 1):]:
        if line.startswith("#") or separator not in line:
            continue
        key, value = line.split(separator, 1)
        key = key.strip().lower().replace(" ", "") if meta else key.strip().lower()
        fields[key] = value.lstrip("=").strip()
    return fields, offset


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _gzip_length(path: Path) -> int:
    """Uncompressed length of a whole gzip stream; -1 if it ends early or is corrupt."""
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
    except (EOFError, OSError, zlib.error):
        return -1
    return total


def _zlib_length(path: Path, offset: int, wbits: int) -> int:
    """Uncompressed length of a zlib/gzip stream starting at ``offset``; -1 if it ends early or is corrupt."""
    decompressor = zlib.decompressobj(wbits)
    total = 0
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(_CHUNK):
                total += len(decompressor.decompress(chunk))
                if decompressor.eof:
                    break
            total += len(decompressor.flush())
    except zlib.error:
        return -1
    return total if decompressor.eof else -1
