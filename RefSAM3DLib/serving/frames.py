"""The one body format of the protocol: a short prefix, a JSON header, then a binary payload.

    b"RS3D" | protocol (1 byte) | header length (4 bytes, big-endian) | header (UTF-8 JSON object) | payload

Arrays never travel as JSON lists: the header describes them (dtype, shape, codec, where they lie in the payload)
and their bytes follow, compressed. Requests and answers that carry no array are plain JSON.
"""
from __future__ import annotations

import json
import struct

MEDIA_TYPE = "application/vnd.refsam3d.frame"
JSON_TYPE = "application/json"
PROTOCOL = 1
MAGIC = b"RS3D"
_PREFIX = struct.Struct(">4sBI")
PREFIX_BYTES = _PREFIX.size
MAX_HEADER_BYTES = 1 << 20  # prompts with hundreds of clicks stay far below this


class FrameError(ValueError):
    """The body is not a well-formed frame; the message says what is wrong with it."""


def frame_prefix(header: dict) -> bytes:
    """Prefix and header of a frame; the payload parts follow it on the wire."""
    data = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return _PREFIX.pack(MAGIC, PROTOCOL, len(data)) + data


def header_length(start: bytes | bytearray | memoryview) -> int:
    """From the first ``PREFIX_BYTES`` bytes of a body: the header's length (FrameError if not a frame)."""
    if len(start) < PREFIX_BYTES:
        raise FrameError(f"the body is {len(start)} bytes long, shorter than a frame's {PREFIX_BYTES}-byte prefix")
    magic, protocol, length = _PREFIX.unpack_from(bytes(start[:PREFIX_BYTES]))
    if magic != MAGIC:
        raise FrameError("the body is not a RefSAM3D frame (it does not start with RS3D); send what "
                         "RefSAM3DLib.serving.client sends")
    if protocol != PROTOCOL:
        raise FrameError(f"frame protocol {protocol} is not supported (this side speaks {PROTOCOL}); use a client and "
                         "server of the same RefSAM3D version")
    if length > MAX_HEADER_BYTES:
        raise FrameError(f"the frame header is {length} bytes; at most {MAX_HEADER_BYTES} are accepted")
    return length


def parse_header(data: bytes | bytearray | memoryview) -> dict:
    try:
        header = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FrameError(f"the frame header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise FrameError("the frame header must be a JSON object")
    return header


def split_frame(body: bytes | bytearray | memoryview) -> tuple[dict, memoryview]:
    """(header, payload) of a complete frame."""
    view = memoryview(body)
    length = header_length(view)
    end = PREFIX_BYTES + length
    if len(view) < end:
        raise FrameError(f"the body ends inside the frame header ({len(view)} of {end} bytes)")
    return parse_header(view[PREFIX_BYTES:end]), view[end:]


def payload_slice(payload: memoryview, where: dict, what: str) -> memoryview:
    """The bytes an array description points to: ``{"offset": o, "length": n}`` inside the payload."""
    try:
        offset, length = int(where["offset"]), int(where["length"])
    except (KeyError, TypeError, ValueError):
        raise FrameError(f"{what}: needs integer 'offset' and 'length' into the payload") from None
    if offset < 0 or length < 0 or offset + length > len(payload):
        raise FrameError(f"{what}: bytes {offset}..{offset + length} lie outside the {len(payload)}-byte payload")
    return payload[offset:offset + length]
