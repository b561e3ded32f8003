"""Where the engine's own time goes: a named-stage profile of file -> mask for a text prompt, a second prompt on
the cached session and one click refinement, on a clinical-size CT, with the former image-resampling path
("before") and the current one ("after") timed in the same run.

    python benchmarks/bench_stages.py --model refsam3d-lite --repeats 3 --json stages.json
    python benchmarks/bench_stages.py --quick        # 256x256x150 voxels, 1 repeat: checks the script end to end

The CT is the bundled sample CT (a real abdominal CT at 3 mm) resampled onto 512x512x300 voxels of
0.7x0.7x1.5 mm (``bench_engine.real_size_ct``) unless ``--image`` names one. Stages come from
``RefSAM3DLib.engine.profiling``: read, modality, convert, reorient, resample, normalise, encode (model),
prompt prep, decode (model), blend, click constraints, previous map, post-process, resample back, threshold,
keep map, write; "other" is what no stage covers. Medians of --repeats after --warmup runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_engine import load_predictor, real_size_ct  # noqa: E402
from timing import describe_device  # noqa: E402

from RefSAM3DLib.engine import model_space  # noqa: E402
from RefSAM3DLib.engine import session as session_module  # noqa: E402
from RefSAM3DLib.engine.model_space import ModelSpace  # noqa: E402
from RefSAM3DLib.engine.profiling import record_stages, stage  # noqa: E402
from RefSAM3DLib.engine.prompts import Prompt  # noqa: E402
from RefSAM3DLib.io.exporters import export_segments  # noqa: E402
from RefSAM3DLib.io.readers import read_volume  # noqa: E402

MODEL_STAGES = ("encode", "decode")
MEASURES = ("text", "second", "click")
STAGE_ORDER = ("read", "modality", "convert", "reorient", "resample", "normalise", "encode", "prompt prep", "decode",
               "blend", "previous map", "click constraints", "post-process", "resample back", "threshold", "keep map",
               "outside-air check", "write", "other")


def _detect_modality_before(array: np.ndarray) -> str:
    """The modality check as it was before the profile (a full ravel() copy of a transposed reader array)."""
    sample = np.asarray(array).ravel()[:: max(1, array.size // 2_000_000)].astype(np.float32)
    low = np.percentile(sample, 1)
    return "CT" if low < -500 and (sample < -500).mean() > 0.01 else "MR"


VARIANTS = {
    # the paths replaced after this profile: separable resampling on a contiguous reoriented copy, ravel() sampling
    "before": {"resampler": "separable", "detect_modality": _detect_modality_before},
    "after": {"resampler": "matrix", "detect_modality": session_module.detect_modality},
}


def _set_variant(name: str) -> None:
    model_space.RESAMPLER = VARIANTS[name]["resampler"]
    session_module.detect_modality = VARIANTS[name]["detect_modality"]


def _one_run(predictor, image_path: Path, out_path: Path, prompts: tuple[str, str], sync) -> dict:
    """Text file -> mask, a second prompt, a click: {measure: {"total": s, stage: s, ..., "other": s}}."""
    runs = {}
    with record_stages(sync) as times:
        start = time.perf_counter()
        with stage("read"):
            volume = read_volume(image_path)
        session = predictor.open(volume)
        (first,) = session.segment(Prompt(text=prompts[0]))
        with stage("write"):
            export_segments(out_path, [first], volume, overwrite=True)
        runs["text"] = (time.perf_counter() - start, dict(times))
    with record_stages(sync) as times:
        start = time.perf_counter()
        session.segment(Prompt(text=prompts[1]))
        runs["second"] = (time.perf_counter() - start, dict(times))
    mask = first.mask
    centre = np.argwhere(mask)[len(np.argwhere(mask)) // 2] if mask.any() else (np.asarray(mask.shape) - 1) // 2
    point = tuple(float(v) for v in volume.geometry.ijk_to_ras(np.asarray(centre, dtype=float)[None])[0])
    with record_stages(sync) as times:
        start = time.perf_counter()
        session.segment(Prompt(text=prompts[0], points=[point], point_labels=[True], previous=first))
        runs["click"] = (time.perf_counter() - start, dict(times))
    out = {}
    for measure, (total, stages) in runs.items():
        stages["other"] = max(0.0, total - sum(stages.values()))
        out[measure] = {"total": total, **stages}
    return out


def _median_profile(runs: list[dict]) -> dict:
    profile = {}
    for measure in MEASURES:
        keys = sorted({k for r in runs for k in r[measure]})
        profile[measure] = {k: statistics.median(r[measure].get(k, 0.0) for r in runs) for k in keys}
    return profile


def largest_non_model(profile: dict) -> dict:
    """{measure: (stage, seconds)} of the largest stage that is not model compute (and not "other")."""
    out = {}
    for measure, stages in profile.items():
        candidates = {k: v for k, v in stages.items() if k not in MODEL_STAGES + ("total", "other")}
        name = max(candidates, key=candidates.get)
        out[measure] = [name, candidates[name]]
    return out


def markdown(result: dict) -> str:
    """The profile as a table: one row per stage, before/after columns for each measure."""
    prof = result["profile"]
    head = "| stage | " + " | ".join(f"{m} before | {m} after" for m in MEASURES) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(MEASURES))]
    names = [s for s in STAGE_ORDER if any(s in prof[v][m] for v in prof for m in MEASURES)]
    names += sorted({k for v in prof for m in MEASURES for k in prof[v][m]} - set(names) - {"total"})
    for name in names + ["total"]:
        label = f"{name} (model)" if name in MODEL_STAGES else name
        cells = []
        for m in MEASURES:
            for v in ("before", "after"):
                value = prof[v][m].get(name)
                cells.append("" if value is None else f"{value:.3f}")
        lines.append(f"| {'**total**' if name == 'total' else label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="refsam3d-lite", help="catalogue name, checkpoint or config preset")
    parser.add_argument("--image", help="profile this CT instead of the synthesised one")
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    parser.add_argument("--spacing", type=float, nargs=3, default=[0.7, 0.7, 1.5])
    parser.add_argument("--prompts", nargs=2, default=["liver", "spleen"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="256x256x150 voxels, 1 repeat (a smoke run)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.shape, args.repeats = [256, 256, 150], 1
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    tmp = Path(tempfile.mkdtemp(prefix="refsam3d-stages-"))
    if args.image:
        image_path = Path(args.image)
    else:
        image_path = real_size_ct(tmp, tuple(args.shape), tuple(args.spacing))
    predictor = load_predictor(args.model, args.device)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for i in range(args.warmup + args.repeats):
        for variant in ("before", "after"):  # interleaved, so drift on a shared machine hits both alike
            _set_variant(variant)
            run = _one_run(predictor, image_path, tmp / "mask.nii.gz", tuple(args.prompts), sync)
            if i >= args.warmup:
                runs[variant].append(run)
    _set_variant("after")
    volume = read_volume(image_path)
    cfg = predictor.model.config
    profile = {v: _median_profile(r) for v, r in runs.items()}
    result = {
        "what": "per-stage profile of the engine (seconds, medians)", "model": args.model,
        "image": image_path.name, "shape": list(volume.geometry.shape),
        "spacing_mm": [round(float(s), 3) for s in volume.geometry.spacing],
        "model_grid": list(ModelSpace.build(volume.geometry, cfg.spacing_mm,
                                            cfg.window_size[1] if cfg.fit_in_plane else None).model_shape),
        "device": describe_device(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"), "repeats": args.repeats, "warmup": args.warmup,
        "quick": args.quick, "prompts": list(args.prompts), "profile": profile,
        "largest_non_model_stage": {v: largest_non_model(p) for v, p in profile.items()},
    }
    result["markdown"] = markdown(result)
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(result["markdown"])
    print(json.dumps(result["largest_non_model_stage"], indent=2))


if __name__ == "__main__":
    main()
