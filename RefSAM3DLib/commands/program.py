"""Running a command as a program: argument parsing, logging, and the rule that bad input is one line, exit 2.

``refsam3d`` (cli.py) and the stand-alone entry points (``python -m RefSAM3DLib.commands.train``, the batch
module under torchrun) all go through ``run``, so they print errors and choose exit codes the same way: a
``RefSAM3DError`` is the user's to fix (one line, code 2), a cancel or Ctrl-C is 130, anything else is a bug
and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable

from ..errors import RefSAM3DError
from .arguments import join_negative_values


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (exit code 2) instead of the usage text plus a line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def new_parser(description: str, add_parsers: list[Callable]) -> Parser:
    parser = Parser(prog="refsam3d", description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in add_parsers:
        add_parser(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process arguments), run the chosen command, and turn errors into exit codes."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the text model's loading bar is not ours to show
    args = parser.parse_args(join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from ..engine.errors import Cancelled

    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args) or 0)
    except RefSAM3DError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"refsam3d {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        print(f"refsam3d {args.command}: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"refsam3d {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = " ".join(str(message).split())
    if category.__module__.startswith("RefSAM3DLib"):
        print(f"refsam3d: warning: {text}", file=sys.stderr)
    else:
        logging.getLogger("refsam3d.warnings").info("%s (%s:%s): %s", category.__name__, filename, lineno, text)


def run_one(command: str, add_parser: Callable, argv: list[str] | None = None) -> int:
    """A single command as its own program (``python -m RefSAM3DLib.commands.train ...`` is ``refsam3d train ...``)."""
    parser = new_parser(f"refsam3d {command}", [add_parser])
    return run(parser, [command, *(sys.argv[1:] if argv is None else argv)])
