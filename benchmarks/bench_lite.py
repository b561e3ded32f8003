"""Benchmark of the lite model's costs on this machine: frozen per-slice encoder, one window's prompt path,
a training step on cached features, and file -> mask through the engine (first prompt, cached second
prompt, click refinement).

    python benchmarks/bench_lite.py --model runs/lite_v1/model_last.pt --image RefSAM3DLib/data/sample_ct_abdomen_3mm.nii.gz

Median of --repeats after one warm-up. Ratios measured in one run are what to compare between runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from RefSAM3DLib.engine.predictor import RefSAM3DPredictor  # noqa: E402
from RefSAM3DLib.engine.prompts import Prompt  # noqa: E402
from RefSAM3DLib.io.readers import read_volume  # noqa: E402
from RefSAM3DLib.modeling.config import get_config  # noqa: E402
from RefSAM3DLib.modeling.lite_refsam3d import LiteRefSAM3D  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def model_costs(repeats: int) -> dict:
    config = get_config("lite")
    model = LiteRefSAM3D(config).eval()
    d, h, w = config.window_size
    slices = torch.rand(8, 1, h, w) * 2 - 1
    with torch.no_grad():
        per_slice = timed(lambda: model.encode_slices(slices), repeats) / 8
        maps = [m[None].expand(1, d, *m.shape[1:]).contiguous() for m in model.encode_slices(slices[:1].expand(d, 1,
                                                                                                               h, w))]
        lift = timed(lambda: model.lift_slices(maps), repeats)
        stages = model.lift_slices(maps)
        image = torch.rand(1, 1, d, h, w) * 2 - 1
        text, has_text = model.encode_text(["liver"])
        decode = timed(lambda: model.decode(stages, image, text, has_text), repeats)
    model.train()
    prompts = 3
    text3, has3 = model.encode_text(["liver", "spleen", "left kidney"])
    half = [m.half() for m in maps]

    def step():
        st = [s.expand(prompts, *s.shape[1:]) for s in model.lift_slices(half)]
        out = model.decode(st, image.expand(prompts, -1, -1, -1, -1), text3, has3)
        (out.logits.float().sigmoid().mean() + out.presence_logits.float().sum()).backward()
        model.zero_grad(set_to_none=True)

    train = timed(step, max(1, repeats // 2))
    return {"window": list(config.window_size), "encoder_per_slice_s": per_slice, "lift_per_window_s": lift,
            "decode_one_prompt_per_window_s": decode, "train_step_1x3_prompts_s": train}


def engine_costs(model_path: str, image_path: str, repeats: int) -> dict:
    predictor = RefSAM3DPredictor.from_pretrained(model_path, device="cpu")
    volume = read_volume(image_path)
    first = []
    second = []
    click = []
    for _ in range(repeats):
        t = time.perf_counter()
        session = predictor.open(volume)
        liver, = session.segment(Prompt(text="liver"))
        first.append(time.perf_counter() - t)
        t = time.perf_counter()
        session.segment(Prompt(text="spleen"))
        second.append(time.perf_counter() - t)
        voxels = np.argwhere(liver.mask)
        centre = voxels[len(voxels) // 2] if len(voxels) else np.asarray(volume.geometry.shape) // 2
        ras = tuple(float(v) for v in volume.geometry.ijk_to_ras(centre[None].astype(float))[0])
        t = time.perf_counter()
        session.segment(Prompt(text="liver", points=[ras], point_labels=[True], previous=liver))
        click.append(time.perf_counter() - t)
    return {"image": image_path, "shape": list(volume.geometry.shape), "model_grid": list(session.grid_shape),
            "first_text_prompt_s": statistics.median(first), "second_prompt_s": statistics.median(second),
            "click_refinement_s": statistics.median(click)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a lite checkpoint for the engine timings (skipped without)")
    parser.add_argument("--image", default="RefSAM3DLib/data/sample_ct_abdomen_3mm.nii.gz")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"device": "cpu", "threads": args.threads, "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d"), **model_costs(args.repeats)}
    if args.model:
        result.update(engine_costs(args.model, args.image, args.repeats))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
