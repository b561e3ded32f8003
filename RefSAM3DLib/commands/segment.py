"""`refsam3d segment`: one volume, one or more text prompts (+ clicks/box) -> mask file, preview, summary."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..engine.postprocess import PostProcessing
from ..engine.prompts import Prompt
from ..io.atomic import check_writable
from ..io.checks import check_output_possible
from ..io.exporters import export_format_for, export_segments, output_paths
from ..io.preview import write_preview_png
from ..io.readers import read_volume
from .arguments import (
    UsageError,
    add_model_arguments,
    add_postprocessing_arguments,
    check_device,
    check_postprocessing,
    check_prompt_text,
    parse_box,
    parse_point,
)
from .progress import ProgressBar


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="segment structures in one volume from text and/or clicks",
                       description="Segment one volume. Clicks (--point/--box) belong to the last --prompt; "
                                   "with no --prompt they form a click-only prompt.")
    p.add_argument("--image", required=True, help="NIfTI/NRRD/MHA file or DICOM series folder")
    p.add_argument("--prompt", action="append", default=[], help="what to segment, e.g. 'left kidney' (repeatable)")
    p.add_argument("--point", action="append", default=[], metavar="R,A,S[,+|-]",
                   help="a click in RAS mm; + includes (default), - excludes (repeatable)")
    p.add_argument("--box", metavar="R1,A1,S1,R2,A2,S2", help="a 3D box (two opposite corners, RAS mm)")
    p.add_argument("--out", required=True, help="output file (.nii.gz, .seg.nrrd or .dcm for DICOM-SEG)")
    p.add_argument("--format", choices=["nifti", "seg.nrrd", "dicom-seg"], help="output format (default: from --out)")
    p.add_argument("--preview", help="also write a PNG preview here")
    p.add_argument("--modality", choices=["CT", "MR"], help="override the automatic CT/MR detection")
    p.add_argument("--frame", type=int, help="frame to use from a 4D image")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_arguments(p)
    add_postprocessing_arguments(p)
    p.set_defaults(func=run)


def build_prompts(texts: list[str], points: list[str], box: str | None) -> list[Prompt]:
    """One Prompt per --prompt; the clicks and box join the last one (or form a click-only prompt)."""
    clicks = [parse_point(p) for p in points]
    corners = parse_box(box) if box else None
    texts = [check_prompt_text(t) for t in texts]
    if not texts and not clicks and corners is None:
        raise UsageError("nothing to segment: give --prompt TEXT and/or --point/--box")
    prompts = [Prompt(text=t) for t in texts[:-1]]
    prompts.append(Prompt(text=texts[-1] if texts else None, points=[c for c, _ in clicks],
                          point_labels=[positive for _, positive in clicks], box=corners))
    return prompts


def summary_lines(results, elapsed: float) -> list[str]:
    lines = [f"{'segment':28s} {'result':10s} {'presence':>8s} {'volume':>11s}"]
    for r in results:
        status = "found" if r.found else "not found"
        presence = f"{r.presence:.2f}" if r.presence is not None else "-"
        lines.append(f"{r.name[:28]:28s} {status:10s} {presence:>8s} {r.volume_ml:9.1f} mL")
        if not r.found and getattr(r, "note", ""):
            lines.append(f"  {r.note}")
    lines.append(f"{len(results)} prompt(s), {sum(r.found for r in results)} found, {elapsed:.1f} s")
    return lines


def check_clicks_inside(prompts: list[Prompt], volume) -> None:
    """A click or box centre outside the image is refused before the model loads (same rule as the engine)."""
    import numpy as np

    for prompt in prompts:
        if prompt.points:
            points = prompt.points_array()
            outside = ~volume.geometry.contains_ras(points)
            if outside.any():
                x, y, z = points[int(np.argmax(outside))]
                raise UsageError(f"--point {x:g},{y:g},{z:g} is outside the volume ({volume.geometry.describe()}); "
                                 "click inside the image (RAS mm)")
        if prompt.box is not None and not volume.geometry.contains_ras(prompt.box_corners().mean(0, keepdims=True))[0]:
            raise UsageError(f"--box centre is outside the volume ({volume.geometry.describe()}); "
                             "draw the box on the image (RAS mm)")


def run(args: argparse.Namespace) -> int:
    from ..engine.predictor import RefSAM3DPredictor

    start = time.perf_counter()
    # everything that can be wrong with the input is checked before the model is loaded
    prompts = build_prompts(args.prompt, args.point, args.box)
    check_postprocessing(args)
    fmt = export_format_for(args.out, args.format)
    check_device(args.device)
    for path in output_paths(args.out, fmt):
        check_writable(path, args.overwrite)
    if args.preview:
        check_writable(args.preview, args.overwrite)
    volume = read_volume(args.image, modality=args.modality, frame=args.frame)
    check_output_possible(volume, fmt, args.out)
    check_clicks_inside(prompts, volume)
    predictor = RefSAM3DPredictor.from_pretrained(args.model, device=args.device,
                                                  anatomy_prior=args.anatomy_prior,
                                                  delineation=args.delineation)
    post = PostProcessing(threshold=args.threshold, largest_component=args.largest_component,
                          fill_holes=args.fill_holes, min_size_ml=args.min_size_ml)
    with ProgressBar("segmenting", enabled=not args.quiet) as bar:
        session = predictor.open(volume)
        results = session.segment(prompts, progress=bar, postprocessing=post,
                                  presence_threshold=args.presence_threshold)
    written = export_segments(args.out, results, volume, fmt=fmt, overwrite=args.overwrite)
    if args.preview:
        write_preview_png(args.preview, volume, results, overwrite=args.overwrite)
    for line in summary_lines(results, time.perf_counter() - start):
        print(line)
    for path in written.paths + ([Path(args.preview)] if args.preview else []):
        print(f"wrote {path}")
    if written.skipped_segments:
        print(f"not stored (empty): {', '.join(written.skipped_segments)}")
    return 0
