"""bench_peers worker for VoxTell: its image network and prompt decoder (random weights), a random text embedding."""
from __future__ import annotations

import json
import time
from pathlib import Path

from peer_common import QUICK_PATCH, Recorder, count_forwards
from peer_nninteractive import NNINTERACTIVE_ARCH

# VoxTell v1.1: the same 6-stage ResEnc-L encoder (voxtell/training/voxtell_trainer.py,
# build_network_architecture: "Always VoxTell's encoder (6-stage ResEnc-L)", features 32..320, blocks
# (1, 3, 4, 6, 6, 6)); the prompt decoder's sizes are fixed in voxtell/inference/predictor.py (VoxTellPredictor
# __init__: decoder_layer 4, text_embedding_dim 2560, 5 mask-former stages, 32 heads, query_dim 2048); patch 192^3
# (voxtell_model.py DECODER_CONFIGS: stage 0 is 192^3 and the positional encoding is built for stage 4's 12^3;
# voxtell_trainer.py: "VoxTell's 192^3"); sliding-window step 0.5 and no resampling (predictor.py, README "Image
# Spacing"). 440 M parameters = 1.76 GB in fp32 (a third-party plugin's README quotes a ~1.7 GB checkpoint).
# Paper: Rokuss et al., VoxTell, arXiv 2511.11450 (CVPR 2026).
VOXTELL_ARCH = {k: v for k, v in NNINTERACTIVE_ARCH.items()}
VOXTELL_PATCH = 192
VOXTELL_TEXT_WIDTH = 2560  # Qwen3-Embedding-4B's embedding width (predictor.py: text_embedding_dim=2560)


def _voxtell_model_class(quick: bool):
    from voxtell.model.voxtell_model import VoxTellModel

    if quick:  # the prompt decoder's positional encoding is built for stage 4 of a 192^3 patch (12^3): shrink it
        scale = QUICK_PATCH / VOXTELL_PATCH
        VoxTellModel.DECODER_CONFIGS = {k: {"channels": v["channels"], "shape": tuple(int(s * scale) for s in v["shape"])}
                                        for k, v in VoxTellModel.DECODER_CONFIGS.items()}
    return VoxTellModel


def prepare_voxtell(spec: dict, folder: Path) -> dict:
    import torch

    model_class = _voxtell_model_class(spec["quick"])
    patch = QUICK_PATCH if spec["quick"] else VOXTELL_PATCH
    plans = {"configurations": {"3d_fullres": {
        "patch_size": [patch] * 3,
        "architecture": {"arch_kwargs": VOXTELL_ARCH, "_kw_requires_import": ["conv_op", "norm_op", "dropout_op",
                                                                               "nonlin"]}}}}
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans, indent=1))
    import pydoc

    kwargs = {k: (pydoc.locate(v) if k in ("conv_op", "norm_op", "nonlin") and v else v) for k, v in VOXTELL_ARCH.items()}
    network = model_class(input_channels=1, **kwargs, decoder_layer=4, text_embedding_dim=VOXTELL_TEXT_WIDTH,
                          num_maskformer_stages=5, num_heads=32, query_dim=2048, project_to_decoder_hidden_dim=2048,
                          deep_supervision=False)
    torch.save({"network_weights": network.state_dict()}, folder / "fold_0" / "checkpoint_final.pth")
    return {"parameters_m": sum(p.numel() for p in network.parameters()) / 1e6, "patch": patch}


def worker_voxtell(spec: dict, rec: Recorder) -> dict:
    import torch

    _voxtell_model_class(spec["quick"])
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIOWithReorient
    from voxtell.inference.predictor import VoxTellPredictor

    start = time.perf_counter()
    predictor = VoxTellPredictor(model_dir=spec["model_dir"], device=torch.device("cpu"),
                                 use_precomputed_embeddings=False)
    load_s = time.perf_counter() - start
    forwards = count_forwards(predictor.network)
    generator = torch.Generator().manual_seed(0)
    # stand-ins for Qwen3-Embedding-4B's last-token embeddings of the two prompts: (1 image, 1 prompt, 2560)
    embeddings = [torch.randn(1, 1, VOXTELL_TEXT_WIDTH, generator=generator) for _ in range(2)]
    io = NibabelIOWithReorient()  # what predict_from_files reads and writes with (RAS reorientation)
    out = Path(spec["out_dir"]) / "voxtell.nii.gz"
    state = {}

    def text():
        data, properties = io.read_images([spec["image"]])
        seg = predictor.predict_single_image(data, text_embeddings=embeddings[0])
        io.write_seg(seg[0], str(out), properties)
        state["data"] = data

    def second():
        predictor.predict_single_image(state["data"], text_embeddings=embeddings[1])

    for i in range(spec["warmup"] + spec["repeats"]):
        timed = i >= spec["warmup"]
        rec.run_counting("text_file_to_mask", text, timed, forwards)
        if timed:  # the same sliding-window pass as the first prompt, which warmed it
            rec.run("second_prompt_rerun", second, timed)
    return {"weights": "random image network and prompt decoder; text embedding random (Qwen3-Embedding-4B, "
                       "4 B parameters, cannot be loaded here: its time is not counted)",
            "load_s": load_s, "threads": torch.get_num_threads(),
            "preprocessing": "reorient to RAS (nibabel), crop to non-zero, z-score; no resampling",
            "windows": f"patch {tuple(predictor.patch_size)}, step 0.5; network forwards per prompt: "
                       f"{rec.forwards['text_file_to_mask']}",
            "parameters_m": sum(p.numel() for p in predictor.network.parameters()) / 1e6}
