"""RefSAM3D checkpoint files: config + weights + format version, written atomically.

A checkpoint is self-describing: ``load_refsam3d`` rebuilds the network from the stored config.
Weights of a text encoder that comes from a pip package (MiniLM) are not stored. Loading into an
existing model checks that the configs agree and names every difference otherwise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import RefSAM3DConfig
from .lite_refsam3d import create_model
from .refsam3d import RefSAM3D
from .sam_weights import CheckpointError

CHECKPOINT_FORMAT = "refsam3d-checkpoint"
CHECKPOINT_VERSION = 1


def _stored_state(model: RefSAM3D, half: bool) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    if model.config.text_encoder == "minilm":
        state = {k: v for k, v in state.items() if not k.startswith("text_encoder.")}
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def save_checkpoint(model: RefSAM3D, path: str | Path, metadata: dict[str, Any] | None = None,
                    half: bool = False, extra: dict[str, Any] | None = None) -> Path:
    """Write atomically (temp file in the same folder, then rename). ``half`` stores float weights as fp16."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
               "config": model.config.to_dict(), "model": _stored_state(model, half),
               "metadata": dict(metadata or {})}
    if extra:
        payload.update(extra)
    return atomic_torch_save(payload, path)


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """torch.save to a temporary sibling, then rename: readers never see half a file."""
    from ..io.atomic import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}); the file is truncated or "
                              f"corrupt -- copy or download it again") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a RefSAM3D checkpoint (for SAM or CLIP weights use "
                              f"--sam-checkpoint / --clip-checkpoint)")
    if int(data.get("format_version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {data['format_version']} is newer than this refsam3d "
                              f"supports ({CHECKPOINT_VERSION}); upgrade refsam3d")
    return data


def config_differences(a: RefSAM3DConfig, b: RefSAM3DConfig) -> list[str]:
    da, db = a.to_dict(), b.to_dict()
    ignore = {"notes", "name"}
    return [f"{k}: {da[k]!r} vs {db[k]!r}" for k in da if k not in ignore and da[k] != db.get(k)]


def load_weights_into(model: RefSAM3D, path: str | Path) -> dict[str, Any]:
    """Load a checkpoint into an existing model of the same config; returns the checkpoint's metadata."""
    return _apply(model, read_checkpoint(path), path)


def _apply(model: RefSAM3D, data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    stored = RefSAM3DConfig.from_dict(data["config"])
    diff = config_differences(stored, model.config)
    if diff:
        raise CheckpointError(f"{path}: checkpoint config {stored.name!r} does not match model config "
                              f"{model.config.name!r}: " + "; ".join(diff[:5]))
    state = data["model"]
    own = model.state_dict()
    if model.config.text_encoder == "minilm":
        own = {k: v for k, v in own.items() if not k.startswith("text_encoder.")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the network ({len(missing)} missing, e.g. "
                              f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    if model.config.text_encoder != "minilm":
        model.text_encoder.clear_cache()
    return dict(data.get("metadata", {}))


def load_refsam3d(path: str | Path) -> tuple[RefSAM3D, dict[str, Any]]:
    """Rebuild a model from the config stored in a checkpoint and load its weights."""
    data = read_checkpoint(path)
    try:
        model = create_model(RefSAM3DConfig.from_dict(data["config"]))
        metadata = _apply(model, data, path)
    except (TypeError, ValueError, KeyError, RuntimeError, AssertionError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path}: its config and weights do not fit together ({type(exc).__name__}); the "
                              "checkpoint is damaged or edited -- use the original file") from None
    return model.eval(), metadata
