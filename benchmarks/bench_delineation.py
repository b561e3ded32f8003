"""Speed and memory of the locate and delineate stages on a clinical-size CT, as a user meets them.

    python benchmarks/bench_delineation.py --json runs/bench-delineation.json
    python benchmarks/bench_delineation.py --quick        # the 3 mm sample CT itself: checks the script end to end

The CT is the bundled sample CT resampled onto 512 x 512 x 300 voxels of 0.8 x 0.8 x 1.25 mm
(``bench_engine.real_size_ct``); its labels give the left kidney's box and a corrective click in RAS (the same
physical space). Measured in one process, in this order, each from a fresh session where it says so:

* box on the left kidney, file -> mask: read the NIfTI, open a session, delineate, write the mask (NIfTI);
* the next corrective click on that result, as the evaluation's click simulator would make it (the centre of the
  largest error against the kidney's label, include or exclude);
* the same box through the network's own 3D decoder (``delineation=False``), for the ratio;
* text "left kidney" on a fresh session, file -> mask: read, open, fit the reference CTs, locate + delineate,
  write (the fit: the references that label the kidney); then texts "spleen", "liver", "right kidney" and
  "stomach" on the same session (the fit is reused; how many of their slices are encoded already depends on
  where the earlier walks went), "esophagus" (placed by the references registered: a long tube to walk) and
  "left humerus" (outside this scan by those: the whole-trunk reference that labels it is registered too);
and the process's peak resident memory. Run it on a quiet machine; compare ratios from one run. The engine runs on
one worker thread, as in the Slicer module and the server (on this 2-core CPU the main thread measured 2-3x slower;
``bench_serve.py``); ``--main-thread`` runs it on the main thread instead, as ``refsam3d segment`` does.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_engine import real_size_ct, sample_ct_path  # noqa: E402
from timing import environment  # noqa: E402

from RefSAM3DLib.engine.predictor import RefSAM3DPredictor  # noqa: E402
from RefSAM3DLib.engine.prompts import Prompt  # noqa: E402
from RefSAM3DLib.evaluation.interactive import bounding_box_ras, next_click  # noqa: E402
from RefSAM3DLib.io.exporters import export_segments  # noqa: E402
from RefSAM3DLib.io.readers import read_label_volume, read_volume  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def kidney_label():
    """The sample CT's left kidney (bool, on the sample CT's own grid) and that grid."""
    labels = read_label_volume(Path(sample_ct_path()).with_name("sample_ct_abdomen_3mm_labels.nii.gz"))
    return labels.array == 3, labels.geometry


def corrective_click(result_mask: np.ndarray, result_geometry, kidney: np.ndarray, kidney_geometry):
    """The click the evaluation's simulator makes next (``next_click``): the result is read at the label's voxel
    centres (nearest voxel of the result's grid), the click goes back as RAS with its sign."""
    ijk = np.argwhere(np.ones(kidney.shape, dtype=bool)).astype(float)
    target = np.round(result_geometry.ras_to_ijk(kidney_geometry.ijk_to_ras(ijk))).astype(int)
    inside = np.all((target >= 0) & (target < np.asarray(result_mask.shape)), axis=1)
    seen = np.zeros(len(ijk), dtype=bool)
    seen[inside] = result_mask[tuple(target[inside].T)]
    step = next_click(seen.reshape(kidney.shape), kidney, np.asarray(kidney_geometry.spacing, dtype=float))
    if step is None:
        return None
    voxel, positive = step
    return tuple(float(v) for v in kidney_geometry.ijk_to_ras(np.asarray([voxel], dtype=float))[0]), positive


def encoder_seconds_per_slice(predictor, slices: int = 4) -> dict[str, float]:
    """The slice encoder alone on 256 px slices, float32 and bfloat16 (medians), for the ratio."""
    images = torch.rand(slices, 1, 1, 256, 256)
    out = {}
    for name, bf16 in (("float32", False), ("bfloat16", True)):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            predictor.slice_sam.embed(images[0])  # warm-up
            times = []
            for image in images:
                t = time.perf_counter()
                predictor.slice_sam.embed(image)
                times.append(time.perf_counter() - t)
        out[f"encoder s/slice, {name}"] = float(np.median(times))
    return out


def main() -> None:
    args = parse_arguments()
    if args.main_thread:
        measure(args)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(measure, args).result()


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="refsam3d-lite")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--main-thread", action="store_true", help="run the engine on the main thread")
    return parser.parse_args()


def measure(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    kidney_reference, kidney_geometry = kidney_label()
    box = bounding_box_ras(kidney_reference, kidney_geometry)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(sample_ct_path()) if args.quick else real_size_ct(Path(tmp))
        t = time.perf_counter()
        predictor = RefSAM3DPredictor.from_pretrained(args.model, device="cpu")
        figures["model load s"] = time.perf_counter() - t

        t = time.perf_counter()
        volume = read_volume(image)
        session = predictor.open(volume)
        kidney, = session.segment(Prompt(box=box))
        export_segments(Path(tmp) / "kidney.nii.gz", [kidney], volume)
        figures["box on a kidney, file -> mask s"] = time.perf_counter() - t
        figures["box: slices encoded"] = float(session.delineation.encoded_slices)

        click, include = corrective_click(kidney.mask, volume.geometry, kidney_reference, kidney_geometry)
        decoded, encoded = session.delineation.segmenter.decoded, session.delineation.encoded_slices
        t = time.perf_counter()
        session.segment(Prompt(box=box, points=[click], point_labels=[include], previous=kidney))
        figures["corrective click s"] = time.perf_counter() - t
        figures["click: slices decoded"] = float(session.delineation.segmenter.decoded - decoded)
        figures["click: slices encoded"] = float(session.delineation.encoded_slices - encoded)
        figures["click: include"] = float(include)

        network = RefSAM3DPredictor.from_pretrained(args.model, device="cpu", delineation=False)
        t = time.perf_counter()
        network.open(volume).segment(Prompt(box=box))
        figures["same box, network's 3D decoder s"] = time.perf_counter() - t
        del network

        t = time.perf_counter()
        fresh_volume = read_volume(image)
        fresh = predictor.open(fresh_volume)
        t_fit = time.perf_counter()
        fresh.locate.fit_for("left kidney")
        figures["fit the reference CTs s"] = time.perf_counter() - t_fit
        figures["fit: references that fit"] = float(len(fresh.locate.fitted))
        located, = fresh.segment(Prompt(text="left kidney"))
        export_segments(Path(tmp) / "kidney_text.nii.gz", [located], fresh_volume)
        figures["text 'left kidney', file -> mask incl. the fit s"] = time.perf_counter() - t
        for text in ("spleen", "liver", "right kidney", "stomach"):  # partly encoded by the earlier walks
            encoded = fresh.delineation.encoded_slices
            t = time.perf_counter()
            fresh.segment(Prompt(text=text))
            figures[f"later text '{text}' s"] = time.perf_counter() - t
            figures[f"later text '{text}': slices encoded"] = float(fresh.delineation.encoded_slices - encoded)
        for text in ("esophagus", "left humerus"):
            # the oesophagus: placed by the two references registered (a long tube to walk); the left humerus:
            # they put it outside this abdominal scan, so the whole-trunk reference labelling it is registered too
            fitted = len(fresh.locate._fits)
            t = time.perf_counter()
            fresh.segment(Prompt(text=text))
            figures[f"later text '{text}' s"] = time.perf_counter() - t
            figures[f"later text '{text}': references registered"] = float(len(fresh.locate._fits) - fitted)
        figures["references that fit, in all"] = float(len(fresh.locate.fitted))
    figures.update(encoder_seconds_per_slice(predictor))
    figures["peak RSS GB"] = peak_rss_gb()
    report = {"environment": environment(torch.device("cpu")), "threads": args.threads,
              "image": "sample CT (3 mm)" if args.quick else "512x512x300 at 0.8x0.8x1.25 mm",
              "date": time.strftime("%Y-%m-%d"), "thread": "main" if args.main_thread else "worker",
              "slice encoder": "bfloat16" if predictor.slice_bf16 else "float32",
              "figures": figures}
    for name, value in figures.items():
        print(f"{name:40s} {value:8.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
