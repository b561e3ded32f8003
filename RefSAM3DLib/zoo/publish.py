"""Publish a trained checkpoint as a bundled catalogue model: copy it into the package and record its
SHA-256 and size in catalogue.json (so the zoo verifies the file it ships).

    python -m RefSAM3DLib.zoo.publish runs/demo/model_last.pt --name refsam3d-demo
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from ..modeling.checkpoint import atomic_torch_save, read_checkpoint
from .catalogue import bundled_path, get_entry

CATALOGUE = Path(__file__).with_name("catalogue.json")


def publish(checkpoint: str | Path, name: str, note: str | None = None) -> Path:
    data = read_checkpoint(checkpoint)
    entry = get_entry(name)
    if data["config"]["name"] != entry.config:
        raise ValueError(f"{checkpoint}: config {data['config']['name']!r} but catalogue entry {name!r} expects "
                         f"{entry.config!r}")
    data["metadata"] = dict(data.get("metadata", {}), name=name, version=entry.version,
                            **({"note": note} if note else {}))
    target = bundled_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(data, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    catalogue = json.loads(CATALOGUE.read_text())
    for item in catalogue:
        if item["name"] == name:
            item["sha256"], item["size_bytes"] = digest, target.stat().st_size
    CATALOGUE.write_text(json.dumps(catalogue, indent=2) + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--name", default="refsam3d-demo")
    parser.add_argument("--note")
    args = parser.parse_args()
    path = publish(args.checkpoint, args.name, args.note)
    print(f"published {args.checkpoint} as {args.name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
