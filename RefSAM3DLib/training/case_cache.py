"""Deterministic per-case preprocessing, done once and cached on disk.

Each case is read, checked (image and label on the same grid, declared labels present), moved to
model space with the same ModelSpace the inference engine uses (so training and inference see
identical orientation and spacing), and stored as .npy files keyed by the inputs and the spacing.
Epochs then only crop and augment.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cases.validation import check_case
from ..engine.intensity import detect_modality, mr_range
from ..engine.model_space import ModelSpace
from .datalist import Case

CACHE_VERSION = 4  # 4: anti-aliased downsampling


@dataclass
class PreparedCase:
    id: str
    image: np.ndarray  # (D, H, W) float32, raw intensities (HU for CT) on the model grid
    label: np.ndarray  # (D, H, W) int16 label values
    names: dict[int, str]  # value -> raw structure name, only values present on the model grid
    modality: str
    intensity_range: tuple[float, float]  # MR: the volume's percentile range used for normalisation
    absent_names: list[str]  # names known to be absent from the whole volume (exhaustive label maps)
    regions: list[str]
    spacing_mm: tuple[float, float, float]
    exhaustive: bool = False


def _key(case: Case, spacing: tuple[float, float, float], percentiles: tuple[float, float],
         fit_in_plane: int | None = None) -> str:
    parts = [str(CACHE_VERSION), case.id, json.dumps(sorted(case.label_map.items())), str(spacing), str(percentiles)]
    if fit_in_plane:
        parts.append(f"fit{fit_in_plane}")
    for f in (case.image, case.label):
        st = f.stat()
        parts += [str(f.resolve()), str(st.st_size), str(int(st.st_mtime))]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def prepare_case(case: Case, spacing: tuple[float, float, float], percentiles: tuple[float, float],
                 cache_dir: Path | None, fit_in_plane: int | None = None) -> PreparedCase:
    """``fit_in_plane``: as in ``ModelSpace.build`` (the lite model sees whole axial slices)."""
    key = _key(case, spacing, percentiles, fit_in_plane)
    folder = Path(cache_dir) / f"{case.id}-{key}" if cache_dir else None
    if folder is not None and (folder / "meta.json").is_file():
        meta = json.loads((folder / "meta.json").read_text())
        return PreparedCase(case.id, np.load(folder / "image.npy"), np.load(folder / "label.npy"),
                            {int(k): v for k, v in meta["names"].items()}, meta["modality"],
                            tuple(meta["intensity_range"]), meta["absent_names"], meta["regions"], tuple(spacing),
                            meta["exhaustive"])
    image, label = check_case(case)
    space = ModelSpace.build(image.geometry, spacing, fit_in_plane)
    raw = torch.from_numpy(np.ascontiguousarray(image.array, dtype=np.float32))
    model_image = space.to_model(raw).numpy().astype(np.float32)
    model_label = space.labels_to_model(torch.from_numpy(np.ascontiguousarray(label.array.astype(np.int16))))
    model_label = model_label.numpy().astype(np.int16)
    present = set(np.unique(model_label).astype(int).tolist()) - {0}
    names = {v: n for v, n in case.label_map.items() if v in present}
    absent = sorted(n for v, n in case.label_map.items() if v not in present) if case.exhaustive else []
    modality = case.modality or detect_modality(image.array)
    lo, hi = mr_range(torch.from_numpy(model_image), percentiles)
    prepared = PreparedCase(case.id, model_image, model_label, names, modality, (float(lo), float(hi)), absent,
                            list(case.regions), tuple(spacing), case.exhaustive)
    if folder is not None:
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        np.save(tmp / "image.npy", model_image)
        np.save(tmp / "label.npy", model_label)
        (tmp / "meta.json").write_text(json.dumps({"names": names, "modality": modality, "intensity_range": [lo, hi],
                                                   "absent_names": absent, "regions": prepared.regions,
                                                   "exhaustive": case.exhaustive}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another rank finished first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return prepared
