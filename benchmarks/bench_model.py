"""Forward latency / peak memory of one RefSAM3D window, next to a bare 12-block ViT-B on the same tokens,
plus one training step (forward + backward, batch 2).

    python benchmarks/bench_model.py --config vit_b --device cuda --json out.json

Medians over --repeats runs after warm-up; bf16 autocast on CUDA, fp32 on the CPU.
"""
from __future__ import annotations

import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from timing import benchmark_parser, environment, median_seconds, peak_gb, reset_peak, write_json  # noqa: E402

from RefSAM3DLib.modeling.config import get_config  # noqa: E402
from RefSAM3DLib.modeling.refsam3d import RefSAM3D  # noqa: E402
from RefSAM3DLib.modeling.text_features import TextFeatures  # noqa: E402
from RefSAM3DLib.training.losses import mask_loss, presence_loss  # noqa: E402


class BareViT(nn.Module):
    """12 pre-norm transformer blocks of ViT-B width with global attention: the compute floor for the tokens."""

    def __init__(self, dim: int = 768, depth: int = 12, heads: int = 12) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(dim, heads, 4 * dim, activation="gelu",
                                                               batch_first=True, norm_first=True, dropout=0.0)
                                    for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


def fake_text(model: RefSAM3D, batch: int, device) -> TextFeatures:
    """Random text features of the right shape (the text path is cached per prompt in real use)."""
    enc = model.text_encoder
    length = model.config.text_context if model.config.text_encoder == "clip" else model.config.minilm_max_tokens
    mask = torch.zeros(batch, length, dtype=torch.bool, device=device)
    mask[:, 8:] = True
    return TextFeatures(torch.randn(batch, length, enc.token_dim, device=device), mask,
                        torch.randn(batch, enc.sentence_dim, device=device))


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=20)
    parser.add_argument("--config", default="vit_b")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = get_config(args.config)
    model = RefSAM3D(cfg).to(device).eval()
    amp = device.type == "cuda"
    results = {"config": cfg.name, "window": list(cfg.window_size), "tokens": int(torch.tensor(cfg.token_grid).prod()),
               **environment(device), "method": f"median of {args.repeats} after 2 warm-up runs; "
                                                 f"{'bf16 autocast' if amp else 'fp32'}", "rows": []}
    bare = BareViT(cfg.embed_dim, cfg.depth, cfg.num_heads).to(device).eval()
    for batch in args.batches:
        image = torch.randn(batch, 1, *cfg.window_size, device=device)
        text = fake_text(model, batch, device)
        has_text = torch.ones(batch, dtype=torch.bool)
        tokens = torch.randn(batch, results["tokens"], cfg.embed_dim, device=device)

        def forward():
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                stages = model.encode_image(image)
                return model.decode(stages, image, text, has_text)

        def encoder_only():
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                return model.encode_image(image)

        def bare_vit():
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                return bare(tokens)

        reset_peak(device)
        t_full = median_seconds(forward, device, args.repeats)
        mem = peak_gb(device)
        t_enc = median_seconds(encoder_only, device, args.repeats)
        t_bare = median_seconds(bare_vit, device, args.repeats)
        results["rows"].append({"batch": batch, "forward_ms": 1000 * t_full, "encoder_ms": 1000 * t_enc,
                                "bare_vit_ms": 1000 * t_bare, "ratio_to_bare": t_full / t_bare,
                                "peak_inference_gb": mem})
    # one training step, batch 2
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    image = torch.randn(2, 1, *cfg.window_size, device=device)
    target = (torch.rand(2, 1, *cfg.window_size, device=device) > 0.7).float()
    text = fake_text(model, 2, device)
    has_text = torch.ones(2, dtype=torch.bool)

    def train_step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model.decode(model.encode_image(image), image, text, has_text)
            loss = mask_loss(out.logits, target) + presence_loss(out.presence_logits, torch.ones(2, device=device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    reset_peak(device)
    t_train = median_seconds(train_step, device, max(3, args.repeats // 2))
    results["train_step_batch2_ms"] = 1000 * t_train
    results["train_peak_gb"] = peak_gb(device)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
