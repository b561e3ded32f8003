"""Parsing and checking of command-line values (points, boxes, devices, thresholds, prompts), with one-line errors.

Everything here runs before a model is loaded, so a typo costs nothing. ``join_negative_values`` lets
``--point -52.6,95.9,-256.5`` through argparse, which otherwise takes a leading '-' for an option.
"""
from __future__ import annotations

import argparse
import re

from ..errors import RefSAM3DError

VALUE_OPTIONS = ("--point", "--box")
_NUMBER_LIST = re.compile(r"^-([0-9.]|inf|nan)", re.IGNORECASE)
MAX_PROMPT_CHARACTERS = 200


class UsageError(RefSAM3DError, ValueError):
    """Bad command-line input: printed as one line, exit code 2."""


def join_negative_values(argv: list[str]) -> list[str]:
    """'--point' '-52.6,95.9,1' -> '--point=-52.6,95.9,1' so argparse does not read the value as an option."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        item = argv[index]
        if item in VALUE_OPTIONS and index + 1 < len(argv) and _NUMBER_LIST.match(argv[index + 1]):
            joined.append(f"{item}={argv[index + 1]}")
            index += 2
            continue
        joined.append(item)
        index += 1
    return joined


def _numbers(option: str, text: str, example: str) -> list[float]:
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        raise UsageError(f"{option} {text!r}: values must be numbers in RAS mm, e.g. {option} {example}") from None
    if not all(abs(v) < 1e6 for v in values):  # also refuses nan and inf
        raise UsageError(f"{option} {text!r}: coordinates must be finite millimetres, e.g. {option} {example}")
    return values


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
    x, y, z = _numbers("--point", ",".join(parts), "12.5,-30,40")
    return (x, y, z), sign


def parse_box(text: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    values = _numbers("--box", text, "-40,-20,10,30,45,80")
    if len(values) != 6:
        raise UsageError(f"--box {text!r}: expected R1,A1,S1,R2,A2,S2 (two opposite corners, RAS mm)")
    if any(values[i] == values[i + 3] for i in range(3)):
        raise UsageError(f"--box {text!r}: the box is flat (two corners share a coordinate); give opposite corners")
    return (values[0], values[1], values[2]), (values[3], values[4], values[5])


def check_prompt_text(text: str) -> str:
    """One --prompt: printable, not too long, and naming at least one word the vocabulary knows."""
    from ..vocab.matcher import knows_any_word

    if not text.strip():
        raise UsageError("--prompt is empty; type what to segment, e.g. --prompt 'liver'")
    if any(not ch.isprintable() for ch in text):
        raise UsageError(f"--prompt {text!r} holds control characters; type plain words, e.g. --prompt 'liver'")
    if len(text) > MAX_PROMPT_CHARACTERS:
        raise UsageError(f"--prompt is {len(text)} characters long; name one structure in at most "
                         f"{MAX_PROMPT_CHARACTERS} characters, e.g. --prompt 'left kidney'")
    if not knows_any_word(text):
        raise UsageError(f"--prompt {text[:60]!r}: no structure or word RefSAM3D knows; name an anatomical "
                         "structure or finding in English, e.g. 'liver', 'left kidney', 'liver cyst'")
    return text


def check_device(device: str) -> str:
    """'cuda' only where a CUDA GPU is usable; checked before the model is loaded."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA GPU is available here; use --device cpu (or auto)")
    return device


def check_postprocessing(args: argparse.Namespace) -> None:
    if not 0.0 < args.threshold < 1.0:
        raise UsageError(f"--threshold {args.threshold:g}: must be a probability between 0 and 1 (default 0.5)")
    if args.presence_threshold is not None and not 0.0 <= args.presence_threshold <= 1.0:
        raise UsageError(f"--presence-threshold {args.presence_threshold:g}: must be between 0 and 1")
    if not 0.0 <= args.min_size_ml < 1e6:
        raise UsageError(f"--min-size-ml {args.min_size_ml:g}: must be 0 or a positive volume in mL")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from ..zoo.catalogue import DEFAULT_MODEL

    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"model name from `refsam3d models list` or a checkpoint path (default: {DEFAULT_MODEL})")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"],
                        help="where to run (auto: the GPU when there is one)")
    parser.add_argument("--no-anatomy-prior", dest="anatomy_prior", action="store_false",
                        help="answer text prompts with the network alone, without the locate stage (the "
                             "reference CTs registered onto the scan; see the model card)")
    parser.add_argument("--no-delineation", dest="delineation", action="store_false",
                        help="answer boxes and clicks with the network's own 3D decoder instead of the pretrained "
                             "2D decoder slice by slice (for comparisons; see the model card)")


def add_postprocessing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--largest-component", action="store_true", help="keep only the largest connected part")
    parser.add_argument("--fill-holes", action="store_true", help="fill enclosed holes")
    parser.add_argument("--min-size-ml", type=float, default=0.05,
                        help="drop parts smaller than this (mL; default 0.05: specks are noise, not a finding)")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability threshold (default 0.5)")
    parser.add_argument("--presence-threshold", type=float, default=None,
                        help="below this presence probability a text prompt is reported 'not found'")
