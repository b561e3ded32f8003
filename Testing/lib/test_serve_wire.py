"""The wire format of `refsam3d serve` on its own: volumes and masks survive the round trip exactly, whatever their
type and content, and damaged or lying bytes are refused with a message instead of being trusted."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from RefSAM3DLib.serving.frames import FrameError, frame_prefix, split_frame
from RefSAM3DLib.serving.mask_codec import MaskDataError, decode_mask, encode_mask, wire_mask_from
from RefSAM3DLib.serving.memory import held_bytes
from RefSAM3DLib.serving.volume_codec import (
    SlabDecoder,
    VolumeDataError,
    VolumeTooLarge,
    decode_slabs,
    encode_slabs,
    volume_spec,
)


@pytest.mark.parametrize("dtype", ["int16", ">i2", "uint8", "float32", "float64", "int32", "bool"])
def test_volumes_round_trip_exactly(dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(0, 500, (37, 23, 19))).astype(dtype)
    spec = volume_spec(array)
    spec["slab_bytes"] = 4096 - 4096 % np.dtype(spec["dtype"]).itemsize  # many slabs, the last one partial
    payload = b"".join(encode_slabs(array, spec))
    decoded = decode_slabs(spec, memoryview(payload), 10**9)
    np.testing.assert_array_equal(decoded, array)
    decoder = SlabDecoder(spec, 10**9)  # fed in arbitrary pieces, as a socket delivers them
    for start in range(0, len(payload), 777):
        decoder.feed(payload[start:start + 777])
    np.testing.assert_array_equal(decoder.finish(), array)


def test_a_volume_keeps_its_memory_order():
    array = np.asfortranarray(np.arange(24 * 20 * 10, dtype=np.int16).reshape(24, 20, 10))  # as NIfTI readers give
    spec = volume_spec(array)
    decoded = decode_slabs(spec, memoryview(b"".join(encode_slabs(array, spec))), 10**9)
    assert spec["order"] == "F" and decoded.flags.f_contiguous and not decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, array)
    strided = array[:, ::2]  # neither order: sent as C
    spec = volume_spec(strided)
    assert spec["order"] == "C"
    np.testing.assert_array_equal(decode_slabs(spec, memoryview(b"".join(encode_slabs(strided, spec))), 10**9), strided)


def test_lying_or_damaged_volume_bytes_are_refused():
    array = np.arange(4000, dtype=np.int16).reshape(20, 20, 10)
    spec = volume_spec(array)
    payload = b"".join(encode_slabs(array, spec))
    with pytest.raises(VolumeTooLarge, match="accepts at most"):
        decode_slabs(spec, memoryview(payload), 1000)
    with pytest.raises(VolumeDataError, match="does not match the declared shape"):
        decode_slabs({**spec, "shape": [20, 20, 9]}, memoryview(payload), 10**9)
    with pytest.raises(VolumeDataError, match="cut short"):
        decode_slabs(spec, memoryview(payload[:-3]), 10**9)
    broken = bytearray(payload)
    broken[10:20] = b"\xff" * 10
    with pytest.raises(VolumeDataError, match="slab 1"):
        decode_slabs(spec, memoryview(bytes(broken)), 10**9)
    for bad, words in (({**spec, "dtype": "|O"}, "not supported"), ({**spec, "shape": [1, 2]}, "three positive"),
                       ({**spec, "codec": "gzip"}, "codec"), ({**spec, "slab_bytes": 3}, "multiple")):
        with pytest.raises(VolumeDataError, match=words):
            decode_slabs(bad, memoryview(payload), 10**9)


@pytest.mark.parametrize("case", ["empty", "full", "corner", "blob"])
def test_masks_round_trip_and_travel_as_their_bounding_box(case):
    mask = np.zeros((50, 40, 30), bool)
    if case == "full":
        mask[:] = True
    elif case == "corner":
        mask[-1, -1, -1] = mask[0, 0, 0] = True
    elif case == "blob":
        mask[10:20, 5:9, 12:29] = np.random.default_rng(1).random((10, 4, 17)) > 0.3
    wire = encode_mask(mask)
    assert (wire.box is None) == (case == "empty") and len(wire.data) < max(1, mask.size // 8)
    header = {"mask": wire.describe(0)}
    back, payload = split_frame(frame_prefix(header) + wire.data)
    np.testing.assert_array_equal(decode_mask(wire_mask_from(back["mask"], payload, mask.shape)), mask)


def test_masks_that_do_not_fit_the_volume_are_refused():
    wire = encode_mask(np.ones((4, 4, 4), bool))
    with pytest.raises(MaskDataError, match="does not lie inside"):
        wire_mask_from(wire.describe(0), wire.data, (3, 4, 4))
    with pytest.raises(MaskDataError, match="unpack to"):
        decode_mask(wire_mask_from({"box": [[0, 0, 0], [8, 8, 8]]}, wire.data, (8, 8, 8)))
    with pytest.raises(FrameError, match="not a RefSAM3D frame"):
        split_frame(b"GET / HTTP/1.1\r\n")


def test_session_memory_counts_each_buffer_once_and_skips_the_model():
    class Holder:
        pass

    model = torch.nn.Linear(1000, 1000)
    shared = torch.zeros(1000, dtype=torch.float32)
    root = Holder()
    root.model = model
    root.maps = [shared, shared[10:20], {"again": shared}]
    root.array = np.zeros(500, np.uint8)
    root.view = root.array[100:]
    assert held_bytes(root) == 4000 + 500


def test_a_not_found_answer_keeps_its_reason_over_the_wire():
    """The engine's note ("outside this scan", "place a click ...") is what the panel shows for "not found"."""
    from RefSAM3DLib.engine.results import SegmentResult
    from RefSAM3DLib.serving.messages import read_result, result_message
    from RefSAM3DLib.vocab.concepts import generic_terminology

    empty = np.zeros((6, 5, 4), bool)
    local = SegmentResult(name="liver", mask=empty, color=(1.0, 0.5, 0.0), terminology=generic_terminology("liver"),
                          found=False, note="the fitted reference CTs put it outside")
    wire = encode_mask(empty)
    header, payload = split_frame(frame_prefix(result_message(local, "r1", wire, 0)) + wire.data)
    remote = read_result(header, payload, empty.shape, "s1")
    assert not remote.found and remote.note == local.note
