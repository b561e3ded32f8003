"""`refsam3d` command line: segment | batch | serve | train | evaluate | models | model-info | demo.

Bad input (missing or damaged file, NaN or zero-spacing volume, broken DICOM series, empty or unknown prompt,
point outside the volume, unknown model, corrupt checkpoint, unwritable or existing output) prints one line
and exits with code 2, before any model work where the input allows it. Exactly the errors deriving from
``RefSAM3DError`` are reported that way (see ``commands/program.py``); anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations

import argparse
import sys

from .commands import model_info, program, segment

COMMANDS = [segment, model_info]
DESCRIPTION = ("RefSAM3D: segment CT/MR volumes from text and 3D clicks; export NIfTI, Slicer .seg.nrrd or "
               "DICOM-SEG; train and evaluate.")


def _optional_commands():
    import importlib.util

    names = ["batch", "demo", "evaluate", "models", "serve", "train"]
    return [importlib.import_module(f".commands.{n}", __package__) for n in names
            if importlib.util.find_spec(f"{__package__}.commands.{n}") is not None]


def build_parser() -> argparse.ArgumentParser:
    return program.new_parser(DESCRIPTION, [module.add_parser for module in COMMANDS + _optional_commands()])


def main(argv: list[str] | None = None) -> int:
    return program.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
