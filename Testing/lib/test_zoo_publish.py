"""Publishing a trained checkpoint into the package: fp16 storage halves the file and changes no mask."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from engine_fixtures import ct_volume

from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
from RefSAM3DLib.engine.prompts import Prompt
from RefSAM3DLib.modeling.checkpoint import load_refsam3d, save_checkpoint
from RefSAM3DLib.modeling.config import get_config
from RefSAM3DLib.modeling.lite_refsam3d import LiteRefSAM3D
from RefSAM3DLib.zoo.publish import publish


def test_half_precision_publish_keeps_the_masks(tmp_path):
    torch.manual_seed(0)
    model = LiteRefSAM3D(get_config("lite_tiny")).eval()
    with torch.no_grad():  # a model whose new parts are not all zero, as after training
        for name, p in model.named_parameters():
            if "mask_decoder" in name or "fusion" in name or "lift" in name:
                p.add_(torch.randn_like(p) * 0.02)
    source = save_checkpoint(model, tmp_path / "run" / "model_last.pt")
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps([{
        "name": "toy-lite", "version": "1", "config": "lite_tiny", "file": "toy_lite.pt", "url": None,
        "sha256": None, "size_bytes": None, "licence": "Apache-2.0", "card": "c.md", "bundled": True,
        "description": "d"}]))
    target = publish(source, "toy-lite", half=True, catalogue_path=catalogue, models_dir=tmp_path / "models")

    entry = json.loads(catalogue.read_text())[0]
    assert entry["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert entry["size_bytes"] == target.stat().st_size
    data = torch.load(target, weights_only=True)
    stored, original = data["model"], torch.load(source, weights_only=True)["model"]
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())

    def size(tensors):
        return sum(v.numel() * v.element_size() for v in tensors.values())

    assert size(stored) <= 0.5 * size(original) + 1024  # the network's weights halved
    section = data["slice_sam"]  # and the delineation network's 2D decoder added, fp16 too
    assert all(v.dtype == torch.float16 for v in section.values() if v.is_floating_point())

    published, metadata = load_refsam3d(target)
    assert metadata["name"] == "toy-lite"
    assert all(p.dtype == torch.float32 for p in published.parameters())
    volume = ct_volume(shape=(24, 40, 36))
    prompt = Prompt(points=[tuple(volume.geometry.ijk_to_ras(np.asarray([[12, 20, 18]], float))[0])],
                    point_labels=[True])
    sessions = [RefSAM3DPredictor(m, device="cpu", delineation=False).open(volume) for m in (model, published)]
    results = [session.segment(prompt)[0] for session in sessions]
    maps = [np.asarray(s.model_probability(r)) for s, r in zip(sessions, results)]
    # all but isolated voxels within 0.02 (a voxel on the click constraint's edge may flip between its two levels)
    assert (np.abs(maps[0] - maps[1]) > 0.02).mean() < 1e-3
    assert (results[0].mask != results[1].mask).mean() < 0.001
