"""`refsam3d models list | download NAME | path NAME`: the model catalogue and its local files."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list, download or locate catalogue models")
    p.add_argument("action", choices=["list", "download", "path"])
    p.add_argument("name", nargs="?", help="model name (for download / path)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..zoo.commands import download_model, list_models, model_path
    from .arguments import UsageError

    if args.action == "list":
        print(list_models())
        return 0
    if not args.name:
        raise UsageError(f"`refsam3d models {args.action}` needs a model name; see `refsam3d models list`")
    print(download_model(args.name) if args.action == "download" else model_path(args.name))
    return 0
