"""`refsam3d batch`: segment many scans with one model load, or on RefSAM3D servers; resumable and shardable.

Inputs: a folder (image files and/or DICOM series sub-folders) or a text file with one path per line.
A case whose output already exists is skipped, so an interrupted batch continues where it stopped: outputs
are written atomically (the main file last), and temporaries a killed run left behind are removed first.
A case with bad input (damaged file, broken DICOM series, ...) is reported in one line and skipped; the
others still run, and the exit code is 1 when any case failed.
Under `torchrun --nproc_per_node N -m RefSAM3DLib.commands.batch ...` each rank takes every N-th case
(and its own GPU). With ``--server URL`` (repeatable) the cases go to `refsam3d serve` instances instead: files
are read and written here, each server segments one case at a time, and a server that stops answering hands
its cases to the others.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .arguments import (
    UsageError,
    add_model_arguments,
    add_postprocessing_arguments,
    check_device,
    check_postprocessing,
    check_prompt_text,
)
from .progress import ProgressBar

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
OUTPUT_SUFFIX = {"nifti": ".nii.gz", "seg.nrrd": ".seg.nrrd", "dicom-seg": ".dcm"}


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="segment every scan in a folder or list (resumable, torchrun-shardable)")
    p.add_argument("--inputs", required=True, help="folder of scans / DICOM series folders, or a .txt list")
    p.add_argument("--prompt", action="append", required=True, help="what to segment (repeatable)")
    p.add_argument("--out", required=True, help="output folder (one file per input)")
    p.add_argument("--format", choices=list(OUTPUT_SUFFIX), default="nifti")
    p.add_argument("--preview", action="store_true", help="also write <case>.png previews")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--server", action="append", default=[], metavar="URL",
                   help="segment on this RefSAM3D server (refsam3d serve) instead of here; repeat to spread the "
                        "cases over several (--model and --device are then the servers')")
    p.add_argument("--token-file", help="file holding the servers' token (needed unless they run on loopback)")
    add_model_arguments(p)
    add_postprocessing_arguments(p)
    p.set_defaults(func=run)


def _case_name(path: Path) -> str:
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _output_names(path: Path, fmt: str) -> list[str]:
    """The files a case writes: its segmentation, a NIfTI's JSON sidecar, and the optional preview."""
    name = _case_name(path)
    return [name + OUTPUT_SUFFIX[fmt], name + ".json", name + ".png"]


def list_inputs(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_file() and path.suffix.lower() == ".txt":
        items = [Path(line.strip()) for line in path.read_text().splitlines() if line.strip()]
        missing = [p for p in items if not p.exists()]
        if missing:
            raise UsageError(f"{spec}: listed input {missing[0]} does not exist ({len(missing)} missing)")
        return items
    if not path.is_dir():
        raise UsageError(f"{spec}: not a folder or a .txt list of scans")
    items = []
    for entry in sorted(path.iterdir()):
        if entry.is_file() and entry.name.lower().endswith(IMAGE_SUFFIXES):
            items.append(entry)
        elif entry.is_dir() and any(f.suffix.lower() == ".dcm" or f.suffix == "" for f in entry.iterdir()
                                    if f.is_file()):
            items.append(entry)
    if not items:
        raise UsageError(f"{spec}: no scans found (looked for {', '.join(IMAGE_SUFFIXES)} files and DICOM folders)")
    return items


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def run(args: argparse.Namespace) -> int:
    from ..engine.postprocess import PostProcessing
    from ..engine.predictor import RefSAM3DPredictor
    from ..engine.prompts import Prompt
    from ..errors import RefSAM3DError
    from ..io.atomic import check_writable, remove_stale_temporaries
    from ..io.checks import check_output_possible
    from ..io.exporters import export_segments
    from ..io.preview import write_preview_png
    from ..io.readers import read_volume

    prompts = [Prompt(text=check_prompt_text(t)) for t in args.prompt]
    check_postprocessing(args)
    check_device(args.device)
    inputs = list_inputs(args.inputs)
    rank, world = _rank_world()
    mine = inputs[rank::world]
    out = Path(args.out)
    check_writable(out / ".refsam3d-batch-probe", overwrite=True)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out, {name for p in mine for name in _output_names(p, args.format)})
    todo = [p for p in mine if not (out / (_case_name(p) + OUTPUT_SUFFIX[args.format])).exists()]
    print(f"rank {rank}/{world}: {len(mine)} scans, {len(mine) - len(todo)} already done", file=sys.stderr)
    if not todo:
        return 0
    if args.server:
        return _run_on_servers(args, todo, out, prompts)
    device = args.device
    if world > 1 and device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    predictor = RefSAM3DPredictor.from_pretrained(args.model, device=device, anatomy_prior=args.anatomy_prior,
                                                  delineation=args.delineation)
    post = PostProcessing(args.threshold, args.largest_component, args.fill_holes, args.min_size_ml)
    failed = []
    with ProgressBar(f"batch (rank {rank})", enabled=not args.quiet) as bar:
        for n, path in enumerate(todo):
            target = out / (_case_name(path) + OUTPUT_SUFFIX[args.format])
            try:
                volume = read_volume(path)
                check_output_possible(volume, args.format, target)
                results = predictor.open(volume).segment(prompts, postprocessing=post,
                                                        presence_threshold=args.presence_threshold)
                # the main output does not exist (else the case was skipped): files beside it (a NIfTI sidecar,
                # a preview) can only be left from an interrupted run of this batch, so they are replaced
                export_segments(target, results, volume, fmt=args.format, overwrite=True)
                if args.preview:
                    write_preview_png(out / (_case_name(path) + ".png"), volume, results, overwrite=True)
                found = ", ".join(r.name for r in results if r.found) or "nothing"
                print(f"{path}: found {found}", file=sys.stderr)
            except RefSAM3DError as exc:
                failed.append(path)
                print(f"{path}: skipped: {' '.join(str(exc).split())}", file=sys.stderr)
            bar((n + 1) / len(todo), _case_name(path))
    if failed:
        print(f"{len(failed)} of {len(todo)} scans failed (listed above); rerun to retry them", file=sys.stderr)
        return 1
    return 0


def _connect(args: argparse.Namespace) -> list:
    """A client per reachable server (one line each for the others); UsageError when none answers."""
    from ..serving.client import ServerClient
    from ..serving.errors import ServerError, ServerUnavailable
    from ..serving.tokens import TokenError, read_token_file

    try:
        token = read_token_file(args.token_file) if args.token_file else None
        clients = [ServerClient(url, token) for url in dict.fromkeys(args.server)]
    except (TokenError, ServerError) as error:
        raise UsageError(f"--server/--token-file: {error}") from None
    reachable = []
    for client in clients:
        try:
            print(client.describe(), file=sys.stderr)
            reachable.append(client)
        except ServerUnavailable as error:
            print(f"skipping: {error}", file=sys.stderr)
    if not reachable:
        raise UsageError("none of the --server addresses answered; start `refsam3d serve` there or check the URLs")
    return reachable


def _run_on_servers(args: argparse.Namespace, todo: list[Path], out: Path, prompts: list) -> int:
    from ..engine.postprocess import PostProcessing
    from ..io.checks import check_output_possible
    from ..io.exporters import export_segments
    from ..io.preview import write_preview_png
    from ..io.readers import read_volume
    from ..serving.dispatch import run_on_servers

    clients = _connect(args)
    post = PostProcessing(args.threshold, args.largest_component, args.fill_holes, args.min_size_ml)

    def work(client, path: Path) -> str:
        target = out / (_case_name(path) + OUTPUT_SUFFIX[args.format])
        volume = read_volume(path)
        check_output_possible(volume, args.format, target)
        remote = client.open(volume)
        try:
            results = remote.segment(prompts, postprocessing=post, presence_threshold=args.presence_threshold)
        finally:
            remote.close()
        export_segments(target, results, volume, fmt=args.format, overwrite=True)
        if args.preview:
            write_preview_png(out / (_case_name(path) + ".png"), volume, results, overwrite=True)
        return "found " + (", ".join(r.name for r in results if r.found) or "nothing")

    with ProgressBar(f"batch on {len(clients)} server(s)", enabled=not args.quiet) as bar:
        done = []

        def report(outcome) -> None:
            done.append(outcome)
            verb = "" if outcome.ok else "skipped: "
            print(f"{outcome.case}: {verb}{outcome.message}", file=sys.stderr)
            bar(len(done) / len(todo), _case_name(outcome.case))

        outcomes = run_on_servers(todo, clients, work, report)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print(f"{len(failed)} of {len(todo)} scans failed (listed above); rerun to retry them", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from .program import run_one

    return run_one("batch", add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
