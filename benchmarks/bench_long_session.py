"""Long interactive session: 1,000 prompts on one Session, resident memory (RSS) sampled every 100 prompts.

    python benchmarks/bench_long_session.py --device cpu --prompts 1000 --json long_session.json

Uses only the public API (``RefSAM3DPredictor.from_pretrained``, ``predictor.open``, ``session.segment``)
on the bundled sample CT, cropped by default to a block around its centre so that a thousand prompts fit in
minutes on a CPU (``--full`` uses the whole scan). Prompts cycle through text, a positive click, a box,
text with a click, and a click refining the previous result, with positions drawn from a fixed seed.
Memory growth is measured from the sample taken after ``--warmup`` prompts to the largest later sample;
the target is under 5 %.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from timing import benchmark_parser, environment, write_json  # noqa: E402

from RefSAM3DLib.commands.demo import sample_ct_path  # noqa: E402
from RefSAM3DLib.engine.predictor import RefSAM3DPredictor  # noqa: E402
from RefSAM3DLib.engine.prompts import Prompt  # noqa: E402
from RefSAM3DLib.io.geometry import VolumeGeometry  # noqa: E402
from RefSAM3DLib.io.readers import read_volume  # noqa: E402
from RefSAM3DLib.io.volume import Volume  # noqa: E402

STRUCTURES = ["liver", "spleen", "left kidney", "right kidney", "stomach", "pancreas", "aorta", "gallbladder"]
KINDS = ["text", "click", "box", "text+click", "refine"]


def rss_mb() -> float:
    """Resident set size of this process now (Linux /proc), in MiB."""
    with open("/proc/self/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cropped(volume: Volume, size: tuple[int, int, int]) -> Volume:
    """A block of ``size`` voxels around the centre, with its exact geometry (same spacing and direction)."""
    start = [max(0, (n - s) // 2) for n, s in zip(volume.array.shape, size)]
    stop = [min(n, b + s) for n, b, s in zip(volume.array.shape, start, size)]
    array = np.ascontiguousarray(volume.array[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]])
    affine = volume.geometry.affine.copy()
    affine[:3, 3] = volume.geometry.ijk_to_ras(np.asarray([start], dtype=np.float64))[0]
    return Volume(array, VolumeGeometry(affine, array.shape), modality=volume.modality, source=volume.source)


def prompt_for(n: int, rng: np.random.Generator, volume: Volume, previous) -> Prompt:
    shape = np.asarray(volume.array.shape)
    inside = rng.uniform(0.25, 0.75, size=3) * (shape - 1)
    point = tuple(volume.geometry.ijk_to_ras(inside[None])[0])
    kind = KINDS[n % len(KINDS)]
    text = STRUCTURES[n % len(STRUCTURES)]
    if kind == "text":
        return Prompt(text=text)
    if kind == "click":
        return Prompt(points=[point])
    if kind == "box":
        half = rng.uniform(0.08, 0.2, size=3) * shape
        corners = volume.geometry.ijk_to_ras(np.stack([inside - half, inside + half]))
        return Prompt(box=(tuple(corners[0]), tuple(corners[1])))
    if kind == "text+click":
        return Prompt(text=text, points=[point], point_labels=[True])
    return Prompt(points=[point], point_labels=[bool(n % 2)], previous=previous)


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=1)
    parser.add_argument("--model", default="refsam3d-lite")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100, help="sample RSS after this many prompts")
    parser.add_argument("--warmup", type=int, default=200, help="prompts before the reference sample")
    parser.add_argument("--crop", type=int, nargs=3, default=[64, 80, 64], help="voxels of the centred block")
    parser.add_argument("--full", action="store_true", help="use the whole sample CT (slower)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    volume = read_volume(sample_ct_path(), modality="CT")
    if not args.full:
        volume = cropped(volume, tuple(args.crop))
    predictor = RefSAM3DPredictor.from_pretrained(args.model, device=args.device)
    session = predictor.open(volume)
    samples = [{"prompts": 0, "rss_mb": round(rss_mb(), 1), "seconds": 0.0}]
    start = time.perf_counter()
    previous = None
    kinds_seconds = {kind: [] for kind in KINDS}
    for n in range(args.prompts):
        prompt = prompt_for(n, rng, volume, previous)
        began = time.perf_counter()
        (previous,) = session.segment(prompt)
        kinds_seconds[KINDS[n % len(KINDS)]].append(time.perf_counter() - began)
        if (n + 1) % args.every == 0:
            samples.append({"prompts": n + 1, "rss_mb": round(rss_mb(), 1),
                            "seconds": round(time.perf_counter() - start, 1)})
            print(f"{n + 1:5d} prompts  RSS {samples[-1]['rss_mb']:8.1f} MiB  {samples[-1]['seconds']:7.1f} s",
                  file=sys.stderr, flush=True)

    reference = next(s for s in samples if s["prompts"] >= args.warmup)
    later = [s for s in samples if s["prompts"] > reference["prompts"]]
    peak_after = max((s["rss_mb"] for s in later), default=reference["rss_mb"])
    growth = (peak_after - reference["rss_mb"]) / reference["rss_mb"] * 100
    write_json(args.json, {
        "benchmark": "long_session", **environment(predictor.device), "model": args.model,
        "volume": {"shape": list(volume.array.shape), "spacing_mm": [round(float(v), 3) for v in volume.geometry.spacing],
                   "cropped": not args.full},
        "prompts": args.prompts, "mix": KINDS, "warmup_prompts": reference["prompts"],
        "rss_samples": samples, "rss_growth_after_warmup_percent": round(growth, 2),
        "target_percent": 5.0, "passed": growth < 5.0,
        "median_seconds_per_kind": {k: round(float(np.median(v)), 4) for k, v in kinds_seconds.items() if v},
        "total_seconds": round(time.perf_counter() - start, 1),
    })


if __name__ == "__main__":
    main()
