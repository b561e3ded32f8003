"""Training-step time and peak memory with the real training objective (clicks, corrective rounds off).

    python benchmarks/bench_train.py --config vit_b --device cuda --batch 2 --json out.json
    python benchmarks/bench_train.py --config demo --device cpu --batch 2
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_model import fake_text  # noqa: E402
from timing import benchmark_parser, environment, median_seconds, peak_gb, reset_peak, write_json  # noqa: E402

from RefSAM3DLib.modeling.config import get_config  # noqa: E402
from RefSAM3DLib.modeling.refsam3d import RefSAM3D  # noqa: E402
from RefSAM3DLib.training.losses import mask_loss, presence_loss  # noqa: E402


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=10)
    parser.add_argument("--config", default="vit_b")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=2, help="prompts decoded per crop (training uses 2)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = get_config(args.config)
    model = RefSAM3D(cfg).to(device).train()
    amp = device.type == "cuda"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    n = args.batch * args.prompts
    image = torch.randn(args.batch, 1, *cfg.window_size, device=device)
    owner = torch.arange(args.batch, device=device).repeat_interleave(args.prompts)
    target = (torch.rand(n, 1, *cfg.window_size, device=device) > 0.8).float()
    present = torch.from_numpy(np.tile([1.0, 0.0], n // 2 + 1)[:n]).float().to(device)
    text = fake_text(model, n, device)
    has_text = torch.ones(n, dtype=torch.bool)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            stages = [s.index_select(0, owner) for s in model.encode_image(image)]
            out = model.decode(stages, image.index_select(0, owner), text, has_text)
            loss = mask_loss(out.logits, target) + 0.5 * presence_loss(out.presence_logits, present)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()

    reset_peak(device)
    seconds = median_seconds(step, device, args.repeats)
    write_json(args.json, {"config": cfg.name, "batch": args.batch, "prompts_per_crop": args.prompts,
                           "window": list(cfg.window_size), **environment(device),
                           "method": f"median of {args.repeats} after 2 warm-up steps; "
                                     f"{'bf16 autocast' if amp else 'fp32'}; AdamW, grad clip 1.0",
                           "step_ms": 1000 * seconds, "peak_gb": peak_gb(device)})


if __name__ == "__main__":
    main()
