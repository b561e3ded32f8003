"""Per-case cache of the frozen 2D encoder's features, so that training the ``lite`` model never runs it.

The lite model's TinyViT is frozen, so its output for a slice only changes when the slice does. Each
training case is normalised, padded to whole windows (in-plane to the window, in depth to at least
one window), optionally given one intensity augmentation per *variant* (contrast-phase simulation for
CT, gamma / noise / blur / posterize ...: everything that acts before the encoder must be baked into a
variant), and every slice is encoded once. The four stage maps are stored as float16 .npy files next
to the normalised image and the label map, and read back memory-mapped: a training step then costs
only the 3D lift, the text fusion and the decoder.

Spatial augmentation is limited to the choice of the slab of slices (and the per-case in-plane spacing
that fits each field of view into the window); rotations or scalings would need re-encoding.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..engine.intensity import scale_to_unit
from ..modeling.config import RefSAM3DConfig
from .augment import AugmentConfig, IntensityAugmenter
from .case_cache import PreparedCase
from .contrast_phase import simulate_contrast_phase

FEATURE_CACHE_VERSION = 1


@dataclass
class SliceFeatureSet:
    """One encoded variant of one case (arrays may be memory-mapped)."""

    case_id: str
    variant: int
    image: np.ndarray  # (D, H, W) float16 normalised, padded
    label: np.ndarray  # (D, H, W) int16, padded with 0
    maps: list[np.ndarray]  # 4 x (D, C, h, w) float16


def pad_to_window(image: torch.Tensor, label: torch.Tensor, window: tuple[int, int, int],
                  pad_value: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad (D, H, W) at the end of each axis: in-plane to the window, in depth to at least one window."""
    d, h, w = image.shape
    pads = (0, max(0, window[2] - w), 0, max(0, window[1] - h), 0, max(0, window[0] - d))
    return F.pad(image, pads, value=pad_value), F.pad(label, pads, value=0)


def normalised_case_image(case: PreparedCase, config: RefSAM3DConfig, variant: int, seed: int,
                          augment: AugmentConfig | None = None) -> torch.Tensor:
    """The case's image in [-1, 1]; variants > 0 carry one random intensity augmentation."""
    image = torch.from_numpy(np.asarray(case.image, dtype=np.float32))
    rng = np.random.default_rng([seed, variant, int(hashlib.sha1(case.id.encode()).hexdigest()[:8], 16)])
    cfg = augment or AugmentConfig()
    if variant > 0 and case.modality == "CT" and rng.random() < cfg.contrast_phase:
        image = simulate_contrast_phase(image, torch.from_numpy(case.label.astype(np.int64)), case.names, rng)
    lo_hi = config.ct_window_hu if case.modality == "CT" else case.intensity_range
    image = scale_to_unit(image, *lo_hi)
    if variant > 0:
        image = IntensityAugmenter(cfg)(image[None], rng)[0]
    return image


def _key(case: PreparedCase, config: RefSAM3DConfig, variant: int, seed: int, weights_digest: str) -> str:
    parts = [str(FEATURE_CACHE_VERSION), case.id, str(case.image.shape), str(float(np.asarray(case.image).sum())),
             str(config.window_size), str(config.ct_window_hu), str(variant), str(seed), weights_digest]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def encoder_digest(model) -> str:
    """A short checksum of the frozen encoder's weights: a different encoder must not reuse cached features."""
    h = hashlib.sha256()
    for name, t in sorted(model.slice_encoder.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().float().numpy().tobytes()[:4096])
    return h.hexdigest()[:12]


def load_feature_set(folder: Path) -> SliceFeatureSet:
    meta = json.loads((folder / "meta.json").read_text())
    maps = [np.load(folder / f"map{i}.npy", mmap_mode="r") for i in range(4)]
    return SliceFeatureSet(meta["case_id"], int(meta["variant"]), np.load(folder / "image.npy", mmap_mode="r"),
                           np.load(folder / "label.npy", mmap_mode="r"), maps)


@torch.no_grad()
def encode_case(case: PreparedCase, model, variant: int, cache_dir: Path, seed: int = 0, batch: int = 8,
                progress: bool = True) -> SliceFeatureSet:
    """Encode (or load from ``cache_dir``) one variant of one case."""
    config = model.config
    folder = Path(cache_dir) / f"{case.id}-v{variant}-{_key(case, config, variant, seed, encoder_digest(model))}"
    if (folder / "meta.json").is_file():
        return load_feature_set(folder)
    image = normalised_case_image(case, config, variant, seed)
    label = torch.from_numpy(np.asarray(case.label, dtype=np.int16))
    image, label = pad_to_window(image, label, tuple(config.window_size), -1.0)
    device = next(model.slice_encoder.parameters()).device
    maps: list[np.ndarray] | None = None
    depth = image.shape[0]
    bar = tqdm(total=depth, desc=f"encoding {case.id} v{variant}", unit="slice", disable=not progress, leave=False)
    for z0 in range(0, depth, batch):
        out = model.encode_slices(image[z0:z0 + batch, None].to(device))
        if maps is None:
            maps = [np.empty((depth,) + tuple(m.shape[1:]), dtype=np.float16) for m in out]
        for target, m in zip(maps, out):
            target[z0:z0 + len(m)] = m.cpu().numpy().astype(np.float16)
        bar.update(len(out[0]))
    bar.close()
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(maps or []):
        np.save(tmp / f"map{i}.npy", m)
    np.save(tmp / "image.npy", image.numpy().astype(np.float16))
    np.save(tmp / "label.npy", label.numpy())
    (tmp / "meta.json").write_text(json.dumps({"case_id": case.id, "variant": variant}))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return load_feature_set(folder)
