"""`refsam3d demo`: the product's main job on the bundled sample CT, with the default model.

Segments abdominal organs from text (plus one absent structure, which must come back "not found")
and one structure from a single click, then writes a NIfTI label map with its sidecar, a Slicer
.seg.nrrd, a PNG preview and a markdown summary.
"""
from __future__ import annotations

import argparse
import time
from importlib import resources
from pathlib import Path

from .arguments import add_model_arguments
from .progress import ProgressBar

DEMO_TEXT_PROMPTS = ["liver", "spleen", "left kidney", "right kidney", "stomach", "aorta", "urinary bladder",
                     "brain"]
# A click a user might place in the middle of the left kidney of the sample CT (RAS mm). (One click in the liver
# gives refsam3d-lite only a small blob -- see its model card -- so the demo clicks where a click works.)
DEMO_CLICK = (-85.0, 110.3, 364.3)


def sample_ct_path() -> Path:
    return Path(str(resources.files("RefSAM3DLib") / "data" / "sample_ct_abdomen_3mm.nii.gz"))


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="segment the bundled sample CT with the default model")
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's files")
    p.add_argument("--quiet", action="store_true")
    add_model_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.predictor import RefSAM3DPredictor
    from ..engine.prompts import Prompt
    from ..io.atomic import check_writable
    from ..io.exporters import export_segments
    from ..io.preview import write_preview_png
    from ..io.readers import read_volume
    from .arguments import check_device
    from .segment import summary_lines

    check_device(args.device)
    out = Path(args.out)
    targets = {name: out / name for name in ("segmentation.nii.gz", "segmentation.seg.nrrd", "preview.png",
                                             "summary.md")}
    for path in targets.values():
        check_writable(path, args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    volume = read_volume(sample_ct_path(), modality="CT")
    predictor = RefSAM3DPredictor.from_pretrained(args.model, device=args.device,
                                                  anatomy_prior=args.anatomy_prior,
                                                  delineation=args.delineation)
    prompts = [Prompt(text=t) for t in DEMO_TEXT_PROMPTS]
    prompts.append(Prompt(points=[DEMO_CLICK], point_labels=[True], name="clicked structure"))
    with ProgressBar("demo", enabled=not args.quiet) as bar:
        session = predictor.open(volume)
        results = session.segment(prompts, progress=bar)
    elapsed = time.perf_counter() - start
    export_segments(targets["segmentation.nii.gz"], results, volume, overwrite=args.overwrite)
    export_segments(targets["segmentation.seg.nrrd"], results, volume, overwrite=args.overwrite)
    write_preview_png(targets["preview.png"], volume, results, overwrite=args.overwrite)
    lines = summary_lines(results, elapsed)
    model = predictor.metadata.get("name", str(args.model))
    text = "\n".join([
        "# RefSAM3D demo", "",
        f"Input: bundled sample CT ({volume.geometry.describe()}), TotalSegmentator test image (Apache-2.0).",
        f"Model: {model} on {predictor.device}. Prompts: {', '.join(repr(t) for t in DEMO_TEXT_PROMPTS)} "
        f"and one click at RAS {DEMO_CLICK} mm.", "",
        "```", *lines, "```", "",
        "'not found' means the model's presence score judged the structure absent from the scan (no mask).", ""])
    from ..io.atomic import atomic_output

    with atomic_output(targets["summary.md"], args.overwrite) as tmp:
        Path(tmp).write_text(text)
    print("\n".join(lines))
    for path in targets.values():
        print(f"wrote {path}")
    return 0
