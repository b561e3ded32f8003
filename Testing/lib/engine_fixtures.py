"""Small real inputs for engine tests: a tiny random RefSAM3D predictor and synthetic volumes."""
from __future__ import annotations

import numpy as np
import torch

from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume
from RefSAM3DLib.modeling.config import get_config
from RefSAM3DLib.modeling.refsam3d import RefSAM3D


def tiny_model(seed: int = 0) -> RefSAM3D:
    """The tiny config with random weights; zero-initialised parts get small random values so outputs vary."""
    torch.manual_seed(seed)
    model = RefSAM3D(get_config("tiny"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("text_encoder") and p.abs().sum() == 0 and "bias" not in name:
                p.normal_(0, 0.05)
    return model.eval()


def tiny_predictor(**kwargs) -> RefSAM3DPredictor:
    kwargs.setdefault("presence_threshold", 0.0)
    kwargs.setdefault("anatomy_prior", False)  # these tests are about the network's own paths
    return RefSAM3DPredictor(tiny_model(), device="cpu", **kwargs)


def ct_volume(shape=(40, 36, 30), spacing=(4.0, 4.0, 4.0), affine: np.ndarray | None = None,
              seed: int = 0) -> Volume:
    """A CT-like volume: air around a water-dense body with two brighter blobs."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    c = [n / 2 for n in shape]
    body = ((i - c[0]) / (shape[0] * 0.42)) ** 2 + ((j - c[1]) / (shape[1] * 0.4)) ** 2 < 1
    array = np.where(body, 40.0, -1000.0) + rng.normal(0, 10, shape)
    array[((i - c[0] * 0.7) ** 2 + (j - c[1]) ** 2 + (k - c[2]) ** 2) < 25] = 150
    array[((i - c[0] * 1.3) ** 2 + (j - c[1] * 1.1) ** 2 + (k - c[2] * 0.8) ** 2) < 16] = 300
    if affine is None:
        geometry = VolumeGeometry.from_spacing(shape, spacing, origin=(-80.0, -70.0, -60.0))
    else:
        geometry = VolumeGeometry(affine, shape)
    return Volume(array.astype(np.int16), geometry, modality="CT", source="synthetic.nii.gz")


def oblique_affine(spacing=(4.0, 4.0, 4.0), degrees: float = 20.0, lps: bool = False) -> np.ndarray:
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rot * np.asarray(spacing)
    if lps:
        affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :3]
    affine[:3, 3] = (30.0, -20.0, 10.0)
    return affine
