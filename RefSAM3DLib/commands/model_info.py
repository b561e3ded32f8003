"""`refsam3d model-info`: parameter counts per component for a config or a checkpoint."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("model-info", help="print total / trainable parameters per component")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="a preset: vit_b, lite, demo or tiny")
    source.add_argument("--checkpoint", help="a RefSAM3D checkpoint file or model name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..modeling.parameters import parameter_report

    if args.config:
        from ..modeling.config import get_config
        from ..modeling.lite_refsam3d import create_model

        try:
            config = get_config(args.config)
        except KeyError as exc:
            from .arguments import UsageError

            raise UsageError(str(exc).strip("'\"")) from None
        model = create_model(config)
        backbone = ("frozen 2D TinyViT per slice + 3D adapters" if config.is_lite
                    else f"3D ViT, patch {config.patch_size}")
        print(f"config {config.name}: window {config.window_size} at {config.spacing_mm} mm, {backbone}, "
              f"token grid {config.token_grid}, text encoder {config.text_encoder}")
    else:
        from ..modeling.checkpoint import load_refsam3d
        from ..zoo.resolve import resolve_model

        model, _ = load_refsam3d(resolve_model(args.checkpoint))
        print(f"checkpoint {args.checkpoint}: config {model.config.name}")
    print(parameter_report(model))
    return 0
