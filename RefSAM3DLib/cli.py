"""`refsam3d` command line: segment | batch | train | evaluate | models | model-info | demo.

Bad input (missing file, unreadable image, empty prompt, point outside the volume, unknown model,
corrupt checkpoint, existing output) prints one line and exits with code 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from .commands import model_info, segment

COMMANDS = [segment, model_info]


def _optional_commands():
    import importlib.util

    names = ["batch", "demo", "evaluate", "models", "train"]
    return [importlib.import_module(f".commands.{n}", __package__) for n in names
            if importlib.util.find_spec(f"{__package__}.commands.{n}") is not None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refsam3d", description="RefSAM3D: segment CT/MR volumes from text and "
                                     "3D clicks; export NIfTI, Slicer .seg.nrrd or DICOM-SEG; train and evaluate.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS + _optional_commands():
        module.add_parser(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    from .commands.arguments import UsageError
    from .engine.errors import PromptError
    from .io.errors import ExportError, OutputExistsError, VolumeReadError
    from .modeling.sam_weights import CheckpointError

    errors: list[type[BaseException]] = [UsageError, PromptError, ExportError, OutputExistsError, VolumeReadError,
                                         CheckpointError, FileNotFoundError]
    try:
        from .zoo.errors import ZooError

        errors.append(ZooError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from .training.errors import DatasetError

        errors.append(DatasetError)
    except ImportError:
        pass
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from .engine.errors import Cancelled

    try:
        return int(args.func(args) or 0)
    except user_errors() as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"refsam3d {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        print(f"refsam3d {args.command}: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"refsam3d {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
