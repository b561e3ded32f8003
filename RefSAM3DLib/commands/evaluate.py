"""`refsam3d evaluate`: Dice / NSD / HD95 / presence accuracy of a model on a datalist split."""
from __future__ import annotations

import argparse

from .arguments import add_model_arguments
from .progress import ProgressBar


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on labelled cases (CSV, markdown table, box plot)")
    p.add_argument("--datalist", required=True, help="dataset description (see `refsam3d train`)")
    p.add_argument("--split", default="val", help="which split to score (default: val); 'all' for every case")
    p.add_argument("--out", required=True, help="folder for metrics.csv, report.md and dice_boxplot.png")
    p.add_argument("--data-root", help="override the datalist's root folder")
    p.add_argument("--tolerance-mm", type=float, default=2.0, help="NSD tolerance (default 2 mm)")
    p.add_argument("--absent-prompts", type=int, default=10, help="'should be absent' prompts per case")
    p.add_argument("--clicks", type=int, nargs="+", metavar="N", default=[],
                   help="also segment every structure interactively and report Dice after N simulated clicks "
                        "(first click deepest inside, then the centre of the largest error), e.g. --clicks 1 3 5")
    p.add_argument("--box", action="store_true", help="also report Dice with the bounding box as the only prompt")
    p.add_argument("--structures", nargs="+", metavar="NAME", help="only these label names (default: all present)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    add_model_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.predictor import RefSAM3DPredictor
    from ..evaluation.report import markdown_table, write_report
    from ..evaluation.run import EvaluationOptions, evaluate_cases
    from ..training.datalist import load_datalist
    from .arguments import UsageError

    datalist = load_datalist(args.datalist, args.data_root)
    cases = datalist.cases if args.split == "all" else datalist.split(args.split)
    if not cases:
        raise UsageError(f"{args.datalist}: no cases in split {args.split!r}")
    predictor = RefSAM3DPredictor.from_pretrained(args.model, device=args.device,
                                                  anatomy_prior=args.anatomy_prior,
                                                  delineation=args.delineation)
    with ProgressBar("evaluating", enabled=not args.quiet) as bar:
        options = EvaluationOptions(args.tolerance_mm, args.absent_prompts, clicks=tuple(args.clicks), box=args.box,
                                    structures=tuple(args.structures or ()))
        rows = evaluate_cases(predictor, cases, options, bar)
    title = f"RefSAM3D evaluation: model {args.model} on {datalist.name} ({args.split})"
    paths = write_report(args.out, rows, title, overwrite=args.overwrite)
    print(markdown_table(rows))
    for path in paths.values():
        print(f"wrote {path}")
    return 0
