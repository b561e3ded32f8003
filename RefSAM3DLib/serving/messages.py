"""Prompts, options and results as the JSON of frame headers, and back; every field is checked on the way in.

A prompt's ``previous`` is ``{"result": <handle>, "mask": <mask description>}``: the server refines from its own
probability map when it still holds the handle, else from the mask (a packed ``WireMask`` in the payload). The
server never trusts a number it reads: counts, coordinates and thresholds are checked before the engine sees them.
"""
from __future__ import annotations

import math

import numpy as np

from ..engine.prompts import Prompt
from ..vocab.codes import Code, Terminology
from .mask_codec import WireMask, decode_mask, encode_mask, wire_mask_from
from .remote_result import RemoteResult

MAX_PROMPTS = 32
MAX_POINTS = 512
_TIMING_KEYS = ("encode_s", "decode_s", "output_s", "total_s")


class MessageError(ValueError):
    """A prompt or option the server cannot use; the message names the field."""


class PreviousGone(MessageError):
    """A refinement names a result the server no longer holds and sends no mask to start from instead."""


# ---------------------------------------------------------------------------------------------- client -> server
def previous_message(previous, session_id: str | None, payload: list[bytes], offset: int) -> tuple[dict, int]:
    """The ``previous`` entry of a prompt, appending a mask to ``payload`` when one is sent; -> (entry, new offset)."""
    handle, wire = None, None
    if isinstance(previous, RemoteResult):
        if previous.session_token is not None and previous.session_token == session_id:
            handle = previous.refinement_id
        wire = previous.wire_mask
        if wire is None and previous.mask is not None and previous.mask.ndim == 3 and previous.mask.size > 1:
            wire = encode_mask(previous.mask)
    elif hasattr(previous, "mask"):
        wire = encode_mask(previous.mask)
    else:
        wire = encode_mask(np.asarray(previous, dtype=bool))
    entry: dict = {"result": handle, "mask": None}
    if wire is not None:
        entry["mask"] = wire.describe(offset)
        payload.append(wire.data)
        offset += len(wire.data)
    return entry, offset


def prompt_message(prompt: Prompt, session_id: str | None, payload: list[bytes], offset: int) -> tuple[dict, int]:
    message = {"text": prompt.text, "points": [[float(c) for c in p] for p in prompt.points],
               "labels": [bool(v) for v in prompt.point_labels], "name": prompt.name,
               "box": None if prompt.box is None else [[float(c) for c in corner] for corner in prompt.box],
               "previous": None}
    if prompt.previous is not None:
        message["previous"], offset = previous_message(prompt.previous, session_id, payload, offset)
    return message, offset


def options_message(postprocessing=None, presence_threshold: float | None = None) -> dict:
    post = None
    if postprocessing is not None:
        post = {"threshold": float(postprocessing.threshold),
                "largest_component": bool(postprocessing.largest_component),
                "fill_holes": bool(postprocessing.fill_holes), "min_size_ml": float(postprocessing.min_size_ml)}
    return {"postprocessing": post,
            "presence_threshold": None if presence_threshold is None else float(presence_threshold)}


# ---------------------------------------------------------------------------------------------- server reads
def _number(value, what: str, low: float = -1e6, high: float = 1e6) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MessageError(f"{what} must be a finite number")
    if not low <= value <= high:
        raise MessageError(f"{what} = {value:g} is outside {low:g}..{high:g}")
    return float(value)


def _point(value, what: str) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise MessageError(f"{what} must be [R, A, S] in millimetres")
    return tuple(_number(c, what) for c in value)  # type: ignore[return-value]


def _optional_text(value, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MessageError(f"{what} must be a string or null")
    return value


def read_prompt(message: object, payload: memoryview, shape: tuple[int, int, int], find_result) -> Prompt:
    """A ``Prompt`` from its JSON; ``find_result(handle)`` gives a result the session still refines from, or None."""
    from .frames import payload_slice

    if not isinstance(message, dict):
        raise MessageError("each prompt must be an object with text, points, labels, box, name, previous")
    points = message.get("points") or []
    labels = message.get("labels") or []
    if not isinstance(points, list) or not isinstance(labels, list) or len(points) > MAX_POINTS:
        raise MessageError(f"'points' and 'labels' must be lists (at most {MAX_POINTS} points)")
    if not all(isinstance(v, bool) for v in labels):
        raise MessageError("'labels' must be true (include) or false (exclude) per point")
    box = message.get("box")
    if box is not None:
        if not isinstance(box, list) or len(box) != 2:
            raise MessageError("'box' must be two opposite corners [[R, A, S], [R, A, S]] or null")
        box = (_point(box[0], "a box corner"), _point(box[1], "a box corner"))
    previous = None
    entry = message.get("previous")
    if entry is not None:
        if not isinstance(entry, dict):
            raise MessageError("'previous' must be an object with result and/or mask")
        handle = entry.get("result")
        if handle is not None and not isinstance(handle, str):
            raise MessageError("'previous.result' must be a result handle (string) or null")
        previous = find_result(handle) if handle else None
        if previous is None and entry.get("mask") is not None:
            where = entry["mask"]
            try:
                data = payload_slice(payload, where, "previous.mask")
                previous = decode_mask(wire_mask_from(where, data, shape))
            except ValueError as error:
                raise MessageError(str(error)) from None
        if previous is None:
            raise PreviousGone("the previous result is no longer on the server and no mask was sent to refine "
                               "from; send the segment's mask as previous.mask")
    return Prompt(text=_optional_text(message.get("text"), "'text'"), points=[_point(p, "a point") for p in points],
                  point_labels=list(labels), box=box, previous=previous,
                  name=_optional_text(message.get("name"), "'name'"))


def read_options(message: object):
    """-> (PostProcessing or None, presence threshold or None)."""
    from ..engine.postprocess import PostProcessing

    if message is None:
        return None, None
    if not isinstance(message, dict):
        raise MessageError("'options' must be an object")
    post = message.get("postprocessing")
    postprocessing = None
    if post is not None:
        if not isinstance(post, dict):
            raise MessageError("'options.postprocessing' must be an object")
        postprocessing = PostProcessing(
            threshold=_number(post.get("threshold", 0.5), "postprocessing threshold", 1e-6, 1 - 1e-6),
            largest_component=bool(post.get("largest_component", False)),
            fill_holes=bool(post.get("fill_holes", False)),
            min_size_ml=_number(post.get("min_size_ml", 0.05), "postprocessing min_size_ml", 0.0, 1e6))
    presence = message.get("presence_threshold")
    return postprocessing, None if presence is None else _number(presence, "presence_threshold", 0.0, 1.01)


# ---------------------------------------------------------------------------------------------- results
def _code(code: Code | None) -> list | None:
    return None if code is None else [code.value, code.scheme, code.meaning]


def _read_code(value) -> Code | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, str) for v in value):
        raise MessageError("a terminology code must be [value, scheme, meaning]")
    return Code(*value)


def terminology_message(terminology: Terminology) -> dict:
    return {"category": _code(terminology.category), "type": _code(terminology.type),
            "modifier": _code(terminology.modifier), "anatomic_region": _code(terminology.anatomic_region),
            "anatomic_region_modifier": _code(terminology.anatomic_region_modifier)}


def read_terminology(message: dict) -> Terminology:
    return Terminology(_read_code(message["category"]), _read_code(message["type"]),
                       _read_code(message.get("modifier")), _read_code(message.get("anatomic_region")),
                       _read_code(message.get("anatomic_region_modifier")))


def result_message(result, handle: str, wire: WireMask, offset: int) -> dict:
    return {"result": handle, "name": result.name, "color": [float(c) for c in result.color],
            "terminology": terminology_message(result.terminology), "prompt": result.prompt,
            "concept_id": result.concept_id, "presence": None if result.presence is None else float(result.presence),
            "found": bool(result.found), "volume_ml": float(result.volume_ml), "algorithm_type": result.algorithm_type,
            "note": getattr(result, "note", ""),
            "timings": {k: float(v) for k, v in getattr(result, "timings", {}).items() if k in _TIMING_KEYS},
            "mask": wire.describe(offset)}


def read_result(message: dict, payload: memoryview, shape: tuple[int, int, int], session_id: str) -> RemoteResult:
    """Client side: a ``RemoteResult`` with its full mask on the volume grid."""
    from .frames import payload_slice

    where = message["mask"]
    wire = wire_mask_from(where, bytes(payload_slice(payload, where, "result mask")), shape)
    return RemoteResult(
        name=message["name"], mask=decode_mask(wire), color=tuple(message["color"]),
        terminology=read_terminology(message["terminology"]), prompt=message.get("prompt"),
        concept_id=message.get("concept_id"), presence=message.get("presence"), found=bool(message["found"]),
        volume_ml=float(message["volume_ml"]), algorithm_type=message.get("algorithm_type", "SEMIAUTOMATIC"),
        session_token=session_id, refinement_id=message.get("result"), timings=dict(message.get("timings") or {}),
        wire_mask=wire, note=str(message.get("note") or ""))
