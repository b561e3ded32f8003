"""Parsing of command-line values (points, boxes, devices) into engine types, with one-line errors."""
from __future__ import annotations

import argparse


class UsageError(ValueError):
    """Bad command-line input: printed as one line, exit code 2."""


def parse_point(text: str) -> tuple[tuple[float, float, float], bool]:
    """'R,A,S' or 'R,A,S,+' (positive, default) / 'R,A,S,-' (negative) in RAS millimetres."""
    parts = [p.strip() for p in text.split(",")]
    sign = True
    if len(parts) == 4:
        if parts[3] not in ("+", "-", "pos", "neg"):
            raise UsageError(f"--point {text!r}: the 4th value must be + or -; e.g. --point 12.5,-30,40,+")
        sign = parts[3] in ("+", "pos")
        parts = parts[:3]
    if len(parts) != 3:
        raise UsageError(f"--point {text!r}: expected R,A,S[,+|-] in mm, e.g. --point 12.5,-30,40")
    try:
        return (float(parts[0]), float(parts[1]), float(parts[2])), sign
    except ValueError:
        raise UsageError(f"--point {text!r}: coordinates must be numbers (RAS mm)") from None


def parse_box(text: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--box {text!r}: values must be numbers (two RAS corners in mm)") from None
    if len(values) != 6:
        raise UsageError(f"--box {text!r}: expected R1,A1,S1,R2,A2,S2 (two opposite corners, RAS mm)")
    return (values[0], values[1], values[2]), (values[3], values[4], values[5])


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="refsam3d-demo",
                        help="model name from `refsam3d models list` or a checkpoint path (default: refsam3d-demo)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"],
                        help="where to run (auto: the GPU when there is one)")


def add_postprocessing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--largest-component", action="store_true", help="keep only the largest connected part")
    parser.add_argument("--fill-holes", action="store_true", help="fill enclosed holes")
    parser.add_argument("--min-size-ml", type=float, default=0.0, help="drop parts smaller than this (mL)")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability threshold (default 0.5)")
    parser.add_argument("--presence-threshold", type=float, default=None,
                        help="below this presence probability a text prompt is reported 'not found'")
