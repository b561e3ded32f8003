"""RefSAM3D against its peers on one real CT, on the same machine, in one run (issue 12, part 1).

    python benchmarks/bench_peers.py --json peers.json --markdown peers.md     # the full comparison
    python benchmarks/bench_peers.py --quick                                   # smoke run on a 64^3 crop

Every tool runs in its own subprocess (its peak resident memory is its own), with its own preprocessing
("resampled as each tool does it"), on the same CT file, the same threads, one after the other; each measure
is the median of --repeats runs after --warmup cycles (a warm-up cycle runs every measure, except a peer's second
measure where it repeats the first one's network pass exactly: nnInteractive's follow-up click, VoxTell's second
prompt). Wall-clock figures drift between runs on a shared machine; the ratios measured in one run are what to
compare.

Tools and what is timed (each peer is built from its installed code with random weights: no peer weights
can be downloaded here, and speed does not depend on the weights' values):

* RefSAM3D ``lite`` (the shipped default model ``refsam3d-lite``) and ``vit_b`` (random; the retired from-scratch
  ``demo`` model was timed too until 2026-12-02, see RESULTS.md): a text prompt file -> written mask, a second text prompt on the cached
  session, one click refining the first result.
* nnInteractive (PyPI ``nninteractive``, ``nnInteractiveInferenceSession`` with its own preprocessing): its
  ResEnc-L U-Net at its 192^3 patch with random weights, written as a model folder and loaded by the session
  itself; the first interaction (a click, file -> written mask) and a follow-up click.
* VoxTell (PyPI ``voxtell``, ``VoxTellPredictor``): its image network and prompt decoder with random weights,
  written as a model folder; a random text embedding of the width of its Qwen3-Embedding-4B text model (2560),
  which cannot be loaded here. Text prompt file -> written mask, and a second prompt (VoxTell has no session
  cache: it runs the whole volume again).
* VISTA3D (MONAI ``vista3d132``, the bundle's preprocessing, 128^3 patch at 1.5 mm, MONAI's sliding window with
  the bundle's overlap 0.3): an automatic class (file -> written mask) and a point prompt on the loaded image.

Where each architecture number comes from is cited next to it below (``NNINTERACTIVE_ARCH``, ``VOXTELL_ARCH``,
``VISTA3D_BUNDLE``). A peer that cannot be installed or built is reported as "not available: <reason>".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# A real contrast CT (chest CTA crop, 1.5 mm, 122x102x112 voxels) from TotalSegmentator's tests (Apache-2.0), with its
# silver-standard heart mask: the click is the heart-mask voxel nearest the mask's centroid. Small enough that every
# tool runs one network window per call, which is what lets the whole comparison finish on 2 CPU cores.
DEFAULT_CT = SHARED_DATA / "totalsegmentator" / "ts_p2_ct_chest_pulmonary_1p5mm" / "ct.nii.gz"
DEFAULT_LABEL = SHARED_DATA / "totalsegmentator" / "ts_p2_ct_chest_pulmonary_1p5mm" / "seg_combined.nii.gz"

OURS = ("refsam3d-lite", "refsam3d-vit_b")
PEERS = ("nninteractive", "voxtell", "vista3d")
TOOLS = OURS + PEERS
QUICK_PATCH = 64  # --quick: every peer's patch shrinks to 64^3 (all their U-Nets divide it), the CT to a 64^3 crop

# nnInteractive v1.0: nnU-Net's ResidualEncoderUNet, "L" preset. Sources: the released checkpoint's configuration
# "3d_fullres_ps192_bs24" of "nnUNetResEncUNetLPlans_noResampling" (nnInteractive/inference/inference_session.py,
# _is_official_checkpoint; the checkpoint folder name in nnInteractive/utils/checkpoint_cleansing.py): patch 192^3,
# no resampling; 1 image + 7 interaction channels (inference_session.py, _legacy_default_capability: 6 channels +
# prev_seg), 2 outputs (initialize_from_trained_model_folder: num_network_output_channels = 2); ResEnc-L stages
# (nnunetv2 residual_encoder_unet_planners.py, nnUNetPlannerResEncL; the same 6-stage network VoxTell's
# voxtell_trainer.py spells out): 32..320 features, blocks (1, 3, 4, 6, 6, 6). Check: this network has 102.36 M
# parameters = 409 MB in fp32, the size of the published checkpoint_final.pth (411,387,150 bytes). Paper: Isensee
# et al., nnInteractive, arXiv 2503.08373.
NNINTERACTIVE_ARCH = {
    "n_stages": 6, "features_per_stage": [32, 64, 128, 256, 320, 320], "conv_op": "torch.nn.modules.conv.Conv3d",
    "kernel_sizes": [[3, 3, 3]] * 6, "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5, "n_blocks_per_stage": [1, 3, 4, 6, 6, 6],
    "n_conv_per_stage_decoder": [1, 1, 1, 1, 1], "conv_bias": True,
    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-05, "affine": True},
    "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True},
}
NNINTERACTIVE_PATCH = 192
# Interaction settings of the v1.0 checkpoint's inference_session_class.json (point radius 4, scribble 2) and the
# session's default decay 0.98 (inference_session.py, _load_capability_and_runtime_defaults).
NNINTERACTIVE_SESSION = {"inference_class": "nnInteractiveInferenceSession", "point_radius": 4,
                         "preferred_scribble_thickness": [2, 2, 2], "interaction_decay": 0.98}

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

# VISTA3D: MONAI's vista3d132 (monai/networks/nets/vista3d.py) as the MONAI bundle builds it; the bundle's
# configs/inference.json (Project-MONAI/model-zoo models/vista3d): resample to 1.5 mm (Spacingd, bilinear),
# CropForegroundd margin 10, ScaleIntensityRanged -963.82..1053.68 HU -> 0..1, Orientationd RAS; patch 128^3,
# sw_batch_size 1, overlap 0.3, Gaussian blending; point prompts through point_based_window_inferer (one window
# centred on the click); outputs inverted to the input grid (Invertd, nearest) and saved as float32.
# Class indices from the bundle's metadata.json channel_def (liver 1, spleen 3, aorta 6, heart 115).
VISTA3D_BUNDLE = {"spacing": [1.5, 1.5, 1.5], "patch": 128, "overlap": 0.3, "a_min": -963.8247715525971,
                  "a_max": 1053.678477684517, "crop_margin": 10}
VISTA3D_CLASSES = {"liver": 1, "kidney": 2, "spleen": 3, "pancreas": 4, "aorta": 6, "heart": 115}

MEASURE_NAMES = {
    "text_file_to_mask": "text prompt: file -> written mask",
    "second_prompt": "second text prompt (cached session)",
    "click": "click refining the first result",
    "first_interaction": "first interaction (click): file -> written mask",
    "followup_click": "follow-up click",
    "second_prompt_rerun": "second text prompt (no cache: whole volume again)",
    "auto_class": "automatic class: file -> written mask",
    "point_prompt": "point prompt on the loaded image",
}
# which of our measures each peer measure is compared with (ratio = peer time / our time: > 1 means we are faster)
COMPARE = {"first_interaction": "text_file_to_mask", "followup_click": "click", "text_file_to_mask": "text_file_to_mask",
           "second_prompt_rerun": "second_prompt", "auto_class": "text_file_to_mask", "point_prompt": "click"}


# ---------------------------------------------------------------------------------------------- memory / timing
def _reset_peak() -> bool:
    """Reset this process's peak resident set (Linux clear_refs 5); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    """Peak resident memory of this process (since the last reset, where resets work), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Recorder:
    """Times named measures: median of the timed runs, peak RSS over them (reset before each run)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.peaks: dict[str, float] = {}
        self.peak_resets = True
        self.load_peak_mb: float | None = None  # imports + model loading: the peak before the first reset

    def run(self, name: str, fn, timed: bool):
        if self.load_peak_mb is None:
            self.load_peak_mb = _peak_mb()
        self.peak_resets &= _reset_peak()
        start = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - start
        if timed:
            self.times.setdefault(name, []).append(elapsed)
            self.peaks[name] = max(self.peaks.get(name, 0.0), _peak_mb())
        return out

    def summary(self) -> dict:
        return {name: {"median_s": statistics.median(ts), "runs_s": ts, "peak_rss_mb": self.peaks[name]}
                for name, ts in self.times.items()}


# ---------------------------------------------------------------------------------------------- workers
def _setup_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)


def _ras_to_ijk(path: str, ras) -> np.ndarray:
    from RefSAM3DLib.io.readers import read_volume

    return read_volume(path).geometry.ras_to_ijk(np.asarray([ras], dtype=float))[0]


def worker_refsam3d(spec: dict, rec: Recorder) -> dict:
    import torch

    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
    from RefSAM3DLib.engine.prompts import Prompt
    from RefSAM3DLib.io.exporters import export_segments
    from RefSAM3DLib.io.readers import read_volume

    config = spec["tool"].split("-", 1)[1]
    start = time.perf_counter()
    if config == "lite":
        predictor = RefSAM3DPredictor.from_pretrained("refsam3d-lite", device="cpu")
        weights = "the shipped refsam3d-lite checkpoint"
    else:
        from RefSAM3DLib.modeling.build import build_refsam3d

        model, _ = build_refsam3d(config)
        weights = "random (no SAM/CLIP weights here)"
        predictor = RefSAM3DPredictor(model, device="cpu")
    load_s = time.perf_counter() - start
    prompts = spec["prompts"]
    out_dir = Path(spec["out_dir"])
    state = {}

    def text():
        volume = read_volume(spec["image"])
        session = predictor.open(volume)
        (result,) = session.segment(Prompt(text=prompts[0]))
        export_segments(out_dir / f"{spec['tool']}.nii.gz", [result], volume, overwrite=True)
        state.update(session=session, first=result)

    for i in range(spec["warmup"] + spec["repeats"]):
        timed = i >= spec["warmup"]
        rec.run("text_file_to_mask", text, timed)
        session, first = state["session"], state["first"]
        rec.run("second_prompt", lambda: session.segment(Prompt(text=prompts[1])), timed)
        rec.run("click", lambda: session.segment(Prompt(text=prompts[0], points=[tuple(spec["point2"])],
                                                        point_labels=[True], previous=first)), timed)
    cfg = predictor.model.config
    session = state["session"]
    return {"weights": weights, "load_s": load_s, "threads": torch.get_num_threads(),
            "preprocessing": f"reorient to RAS, resample to {tuple(cfg.spacing_mm)} mm (model grid "
                             f"{tuple(session.space.model_shape)}), CT window "
                             f"{tuple(cfg.ct_window_hu)} HU",
            "windows": f"{len(session.volume_windows())} window(s) of {tuple(cfg.window_size)}",
            "mask_voxels_first": int(state["first"].mask.sum())}


def _count_forwards(module) -> list[int]:
    counter = [0]

    def hook(*_):
        counter[0] += 1

    module.register_forward_hook(hook)
    return counter


def prepare_nninteractive(spec: dict, folder: Path) -> dict:
    """A model folder laid out as the released one (plans, dataset, session metadata, fold_0 checkpoint)."""
    import torch
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    patch = QUICK_PATCH if spec["quick"] else NNINTERACTIVE_PATCH
    configuration = "3d_fullres_ps192_bs24"
    plans = {
        "dataset_name": "Dataset999_RandomWeights", "plans_name": "nnUNetResEncUNetLPlans_noResampling",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0], "original_median_shape_after_transp": [192] * 3,
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "nnUNetPlannerResEncL", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
        "configurations": {configuration: {
            "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 24, "patch_size": [patch] * 3, "median_image_size_in_voxels": [192] * 3,
            "spacing": [1.0, 1.0, 1.0], "normalization_schemes": ["ZScoreNormalization"],
            "use_mask_for_norm": [False], "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape", "resampling_fn_data_kwargs": {},
            "resampling_fn_seg_kwargs": {}, "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {}, "batch_dice": False,
            "architecture": {"network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                             "arch_kwargs": NNINTERACTIVE_ARCH,
                             "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}}},
    }
    dataset = {"channel_names": {"0": "image"}, "labels": {"background": 0, "foreground": 1}, "numTraining": 0,
               "file_ending": ".nii.gz"}
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans, indent=1))
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=1))
    (folder / "inference_session_class.json").write_text(json.dumps(NNINTERACTIVE_SESSION))
    manager = PlansManager(plans)
    network = nnInteractiveTrainer_stub.build_network_architecture(
        manager, manager.get_configuration(configuration), 1 + 7, 2, enable_deep_supervision=False)
    # Random weights predict foreground everywhere, which sends AutoZoom to its 4x maximum and the refinement over
    # the whole image (one quick-mode click took 77 refinement patches). A trained network clicked on an object that
    # fits in one patch (the heart here: 192 voxels = 288 mm) stops after one pass. So the output layer is set to
    # "background" (weight 0, bias +1/-1): every layer still runs, AutoZoom sees no change at the patch border and
    # the session takes that one-pass path -- nnInteractive's cheapest click, a conservative figure for it.
    seg = network.decoder.seg_layers[-1]
    with torch.no_grad():
        seg.weight.zero_()
        seg.bias.copy_(torch.tensor([1.0, -1.0]))
    torch.save({"network_weights": network.state_dict(), "trainer_name": "nnInteractiveTrainer_stub",
                "init_args": {"configuration": configuration}}, folder / "fold_0" / "checkpoint_final.pth")
    return {"parameters_m": sum(p.numel() for p in network.parameters()) / 1e6, "patch": patch}


def worker_nninteractive(spec: dict, rec: Recorder) -> dict:
    import SimpleITK as sitk
    import torch
    from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

    start = time.perf_counter()
    session = nnInteractiveInferenceSession(device=torch.device("cpu"), use_torch_compile=False, verbose=False,
                                            torch_n_threads=spec["threads"], do_autozoom=True)
    session.initialize_from_trained_model_folder(spec["model_dir"], use_fold=0)
    load_s = time.perf_counter() - start
    forwards = _count_forwards(session.network)
    # nnInteractive takes sitk's array as it is, [z, y, x]; a click is an index into it
    point = [float(v) for v in _ras_to_ijk(spec["image"], spec["point"])[::-1]]
    point2 = [float(v) for v in _ras_to_ijk(spec["image"], spec["point2"])[::-1]]
    out = Path(spec["out_dir"]) / "nninteractive.nii.gz"
    per_call = {}

    def first():
        image = sitk.ReadImage(spec["image"])
        array = sitk.GetArrayFromImage(image)[None]
        session.set_image(array)
        target = torch.zeros(array.shape[1:], dtype=torch.uint8)
        session.set_target_buffer(target)
        before = forwards[0]
        session.add_point_interaction(point, include_interaction=True)
        per_call["first_interaction"] = forwards[0] - before
        mask = sitk.GetImageFromArray(target.numpy())
        mask.CopyInformation(image)
        sitk.WriteImage(mask, str(out))

    def followup():
        before = forwards[0]
        session.add_point_interaction(point2, include_interaction=True)
        per_call["followup_click"] = forwards[0] - before

    for i in range(spec["warmup"] + spec["repeats"]):
        timed = i >= spec["warmup"]
        rec.run("first_interaction", first, timed)
        if timed:  # the follow-up runs the same network pass, warmed by the first interaction (saves ~40 s at 192^3)
            rec.run("followup_click", followup, timed)
    patch = session.configuration_manager.patch_size
    return {"weights": "random (the published weights are CC BY-NC-SA and not downloadable here)",
            "load_s": load_s, "threads": torch.get_num_threads(),
            "preprocessing": "none: the voxel grid as read (no resampling), z-score over the non-zero bounding box",
            "windows": f"patch {tuple(patch)}; network forwards per call (AutoZoom on, last run): {per_call}",
            "parameters_m": sum(p.numel() for p in session.network.parameters()) / 1e6}


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
    forwards = _count_forwards(predictor.network)
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

    calls = {}
    for i in range(spec["warmup"] + spec["repeats"]):
        timed = i >= spec["warmup"]
        before = forwards[0]
        rec.run("text_file_to_mask", text, timed)
        calls["text_file_to_mask"] = forwards[0] - before
        if timed:  # the same sliding-window pass as the first prompt, which warmed it
            rec.run("second_prompt_rerun", second, timed)
    return {"weights": "random image network and prompt decoder; text embedding random (Qwen3-Embedding-4B, "
                       "4 B parameters, cannot be loaded here: its time is not counted)",
            "load_s": load_s, "threads": torch.get_num_threads(),
            "preprocessing": "reorient to RAS (nibabel), crop to non-zero, z-score; no resampling",
            "windows": f"patch {tuple(predictor.patch_size)}, step 0.5; network forwards per prompt: "
                       f"{calls['text_file_to_mask']}",
            "parameters_m": sum(p.numel() for p in predictor.network.parameters()) / 1e6}


def worker_vista3d(spec: dict, rec: Recorder) -> dict:
    import torch
    from monai.apps.vista3d.inferer import point_based_window_inferer
    from monai.apps.vista3d.transforms import VistaPostTransformd
    from monai.data import MetaTensor
    from monai.inferers import sliding_window_inference
    from monai.networks.nets.vista3d import vista3d132
    from monai.transforms import (
        CastToTyped,
        Compose,
        CropForegroundd,
        EnsureChannelFirstd,
        EnsureTyped,
        Invertd,
        LoadImaged,
        Orientationd,
        SaveImage,
        ScaleIntensityRanged,
        Spacingd,
    )

    bundle = VISTA3D_BUNDLE
    patch = [QUICK_PATCH if spec["quick"] else bundle["patch"]] * 3
    start = time.perf_counter()
    network = vista3d132(in_channels=1).eval()
    load_s = time.perf_counter() - start
    forwards = _count_forwards(network)
    preprocessing = Compose([
        LoadImaged(keys="image", image_only=True), EnsureChannelFirstd(keys="image"),
        EnsureTyped(keys="image", device="cpu", track_meta=True),
        Spacingd(keys="image", pixdim=bundle["spacing"], mode="bilinear"),
        CropForegroundd(keys="image", allow_smaller=True, margin=bundle["crop_margin"], source_key="image"),
        ScaleIntensityRanged(keys="image", a_min=bundle["a_min"], a_max=bundle["a_max"], b_min=0, b_max=1, clip=True),
        Orientationd(keys="image", axcodes="RAS"), CastToTyped(keys="image", dtype=torch.float32)])
    label = VISTA3D_CLASSES.get(spec["prompts"][0].lower(), 1)
    saver = SaveImage(output_dir=spec["out_dir"], output_postfix="vista3d", output_ext=".nii.gz",
                      output_dtype=np.float32, separate_folder=False, resample=False, print_log=False)
    state = {}

    def postprocess(data: dict, pred) -> torch.Tensor:
        image = data["image"]
        if not isinstance(pred, MetaTensor):
            pred = MetaTensor(pred, meta=image.meta, applied_operations=image.applied_operations)
        data = dict(data, pred=pred[0])
        data = VistaPostTransformd(keys="pred")(data)
        data = Invertd(keys="pred", transform=preprocessing, orig_keys="image", nearest_interp=True,
                       to_tensor=True)(data)
        return data["pred"]

    def auto_class():
        data = preprocessing({"image": spec["image"]})
        with torch.no_grad():
            pred = sliding_window_inference(
                data["image"][None], roi_size=patch, sw_batch_size=1, predictor=network, overlap=bundle["overlap"],
                mode="gaussian", sw_device="cpu", device="cpu", transpose=True,
                class_vector=torch.tensor([[label]]), point_coords=None, point_labels=None)
        data["label_prompt"] = torch.tensor([label])
        mask = postprocess(data, pred)
        saver(mask)
        state["data"] = {"image": data["image"]}

    def point_prompt():
        data = dict(state["data"])
        image = data["image"]
        voxel = np.linalg.inv(np.asarray(image.affine, dtype=float)) @ np.asarray(list(spec["point"]) + [1.0])
        coords = torch.tensor([[np.round(voxel[:3]).tolist()]], dtype=torch.float32)
        labels = torch.tensor([[1]])
        with torch.no_grad():
            pred = point_based_window_inferer(
                image[None], roi_size=patch, sw_batch_size=1, predictor=network, mode="gaussian", sw_device="cpu",
                device="cpu", overlap=bundle["overlap"], transpose=True, point_coords=coords, point_labels=labels,
                class_vector=None, prompt_class=torch.tensor([[label]]), prev_mask=None)
        data.update(points=coords[0], point_labels=labels[0])
        return postprocess(data, pred)

    calls = {}
    for i in range(spec["warmup"] + spec["repeats"]):
        timed = i >= spec["warmup"]
        before = forwards[0]
        rec.run("auto_class", auto_class, timed)
        calls["auto_class"] = forwards[0] - before
        before = forwards[0]
        rec.run("point_prompt", point_prompt, timed)
        calls["point_prompt"] = forwards[0] - before
    shape = tuple(state["data"]["image"].shape[1:])
    return {"weights": "random (bundle weights not downloadable here)", "load_s": load_s,
            "threads": torch.get_num_threads(),
            "preprocessing": f"resample to 1.5 mm, crop foreground, HU window, RAS: {shape} voxels",
            "windows": f"patch {tuple(patch)}, overlap {bundle['overlap']}; network forwards per call: {calls}",
            "parameters_m": sum(p.numel() for p in network.parameters()) / 1e6}


WORKERS = {"nninteractive": worker_nninteractive, "voxtell": worker_voxtell, "vista3d": worker_vista3d}
PREPARE = {"nninteractive": prepare_nninteractive, "voxtell": prepare_voxtell}


def run_worker(tool: str, spec_path: str, out_path: str, prepare: bool) -> None:
    spec = json.loads(Path(spec_path).read_text())
    spec["tool"] = tool
    _setup_threads(spec["threads"])
    try:
        if prepare:
            info = PREPARE[tool](spec, Path(spec["model_dir"]))
            Path(out_path).write_text(json.dumps(info))
            return
        rec = Recorder()
        worker = worker_refsam3d if tool in OURS else WORKERS[tool]
        info = worker(spec, rec)
        result = {"available": True, **info, "measures": rec.summary(),
                  "load_peak_rss_mb": rec.load_peak_mb,
                  "process_peak_rss_mb": max([rec.load_peak_mb or 0.0, _peak_mb(), *rec.peaks.values()]),
                  "peak_per_measure": rec.peak_resets}
    except ImportError as exc:
        result = {"available": False, "reason": f"cannot import {exc.name or exc} (pip install -e '.[bench]')"}
    except Exception as exc:  # a peer that cannot be built is reported, not fatal
        traceback.print_exc()
        result = {"available": False, "reason": f"{type(exc).__name__}: {exc}"[:300]}
    Path(out_path).write_text(json.dumps(result))


# ---------------------------------------------------------------------------------------------- parent
def _pick_points(image: Path, label: Path | None, label_value: int) -> tuple[list[float], list[float]]:
    """The click (RAS mm): the reference mask's voxel nearest its centroid, else the image centre; the follow-up
    click 6 mm along RAS +x (to the patient's right) of it, or to the left where that leaves the image."""
    from RefSAM3DLib.io.readers import read_volume

    volume = read_volume(image)
    voxel = (np.asarray(volume.geometry.shape) - 1) / 2
    if label is not None and label.exists():
        mask = np.asarray(read_volume(label).array) == label_value
        if mask.any():
            cells = np.argwhere(mask)
            voxel = cells[np.argmin(((cells - cells.mean(0)) ** 2).sum(1))]
    ras = volume.geometry.ijk_to_ras(np.asarray([voxel], dtype=float))[0]
    second = ras + np.asarray([6.0, 0.0, 0.0])
    if not volume.geometry.contains_ras(second[None])[0]:
        second = ras - np.asarray([6.0, 0.0, 0.0])
    return [float(v) for v in ras], [float(v) for v in second]


def _quick_crop(image: Path, point: list[float], folder: Path, size: int = QUICK_PATCH) -> Path:
    """A size^3 crop of the CT around the click, geometry kept (for --quick)."""
    import SimpleITK as sitk

    img = sitk.ReadImage(str(image))
    index = img.TransformPhysicalPointToIndex((-point[0], -point[1], point[2]))  # ITK points are LPS
    lo = [int(min(max(0, i - size // 2), max(0, n - size))) for i, n in zip(index, img.GetSize())]
    extent = [min(size, n) for n in img.GetSize()]
    crop = sitk.RegionOfInterest(img, extent, lo)
    path = folder / "ct_quick.nii.gz"
    sitk.WriteImage(crop, str(path))
    return path


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "refsam3d", "nninteractive", "nnunetv2", "dynamic_network_architectures", "voxtell",
                 "monai", "SimpleITK", "nibabel"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _run_subprocess(args: list[str], threads: int, timeout: int, log: Path) -> tuple[int, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               nnUNet_raw="/nonexistent", nnUNet_preprocessed="/nonexistent", nnUNet_results="/nonexistent")
    with open(log, "w") as f:
        try:
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=env, stdout=f,
                                  stderr=subprocess.STDOUT, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = -9
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-3:]
    return code, " | ".join(tail)


def run_all(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="refsam3d-peers-"))
    image = Path(args.image) if args.image else DEFAULT_CT
    if not image.exists():
        raise SystemExit(f"{image}: no such CT; pass --image (the default lives in ../shared/data)")
    label = Path(args.label) if args.label else (DEFAULT_LABEL if not args.image else None)
    point, point2 = _pick_points(image, label, args.label_value)
    if args.quick:
        image = _quick_crop(image, point, work)
    spec = {"image": str(image), "prompts": args.prompts, "point": point, "point2": point2, "repeats": args.repeats,
            "warmup": args.warmup, "threads": args.threads, "quick": args.quick, "out_dir": str(work)}
    results = {}
    for tool in args.tools:
        started = time.perf_counter()
        tool_spec = dict(spec, model_dir=str(work / f"{tool}_model"))
        spec_path = work / f"{tool}_spec.json"
        spec_path.write_text(json.dumps(tool_spec))
        out_path = work / f"{tool}_result.json"
        result = None
        if tool in PREPARE:
            prep_out = work / f"{tool}_prepare.json"
            code, tail = _run_subprocess(["--prepare", tool, "--spec", str(spec_path), "--out", str(prep_out)],
                                         args.threads, args.timeout, work / f"{tool}_prepare.log")
            if code != 0 or not prep_out.exists() or "available" in json.loads(prep_out.read_text()):
                reason = json.loads(prep_out.read_text()).get("reason") if prep_out.exists() else tail
                result = {"available": False, "reason": f"could not build its network: {reason or tail}"}
        if result is None:
            code, tail = _run_subprocess(["--worker", tool, "--spec", str(spec_path), "--out", str(out_path)],
                                         args.threads, args.timeout, work / f"{tool}.log")
            if out_path.exists():
                result = json.loads(out_path.read_text())
            else:
                why = "timed out" if code == -9 else f"exit code {code}"
                result = {"available": False, "reason": f"{why}: {tail}"[:300]}
        result["wall_s"] = time.perf_counter() - started
        results[tool] = result
        status = "ok" if result.get("available") else f"not available: {result.get('reason')}"
        print(f"[{tool}] {status} ({result['wall_s']:.0f} s)", flush=True)
        for path in (work / f"{tool}_model").rglob("*.pth") if (work / f"{tool}_model").exists() else []:
            path.unlink()  # random checkpoints: up to 1.8 GB each
    from RefSAM3DLib.io.readers import read_volume

    volume = read_volume(image)
    return {
        "what": "RefSAM3D vs peers, one CT, one machine, one run (issue 12 part 1)",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "device": f"CPU: {_cpu()}, {os.cpu_count()} cores",
        "threads": args.threads, "gpu": "not measured: no device lent", "versions": _versions(),
        "image": {"path": str(image), "shape": list(volume.geometry.shape),
                  "spacing_mm": [round(float(s), 3) for s in volume.geometry.spacing],
                  "click_ras_mm": [round(v, 1) for v in point], "followup_click_ras_mm": [round(v, 1) for v in point2]},
        "prompts": args.prompts, "repeats": args.repeats, "warmup": args.warmup, "quick": args.quick,
        "method": f"each tool in its own subprocess, one after the other; median of {args.repeats} after "
                  f"{args.warmup} warm-up; peak = highest resident memory of the tool's process during that "
                  f"measure (VmHWM reset before each run), 'process peak' includes model loading",
        "results": results, "work_dir": str(work),
    }


def markdown(report: dict) -> str:
    res = report["results"]
    lines = ["| tool | measure | median s | peak RSS MiB | notes |", "|---|---|---:|---:|---|"]
    for tool in TOOLS:
        if tool not in res:
            continue
        r = res[tool]
        if not r.get("available"):
            lines.append(f"| {tool} | - | - | - | not available: {r.get('reason')} |")
            continue
        note = f"{r.get('weights', '')}; {r.get('preprocessing', '')}; {r.get('windows', '')}; process peak " \
               f"{r['process_peak_rss_mb']:.0f} MiB; load {r['load_s']:.1f} s"
        for i, (name, m) in enumerate(r["measures"].items()):
            lines.append(f"| {tool if i == 0 else ''} | {MEASURE_NAMES.get(name, name)} | {m['median_s']:.3f} | "
                         f"{m['peak_rss_mb']:.0f} | {note if i == 0 else ''} |")
    lines.append("| all tools | GPU | not measured: no device lent | | |")
    ours = [t for t in OURS if res.get(t, {}).get("available")]
    if ours:
        lines += ["", "Ratios (peer / RefSAM3D, same run): time, then peak RSS; > 1 means RefSAM3D is faster / smaller.",
                  "", "| peer measure | compared with our | " + " | ".join(ours) + " |",
                  "|---|---|" + "---:|" * len(ours)]
        for peer in PEERS:
            r = res.get(peer, {})
            if not r.get("available"):
                lines.append(f"| {peer} | - | " + " | ".join("n/a" for _ in ours) + " |")
                continue
            for name, m in r["measures"].items():
                mine = COMPARE[name]
                cells = []
                for t in ours:
                    o = res[t]["measures"][mine]
                    cells.append(f"{m['median_s'] / o['median_s']:.1f}x / {m['peak_rss_mb'] / o['peak_rss_mb']:.1f}x")
                lines.append(f"| {peer}: {MEASURE_NAMES[name]} | {MEASURE_NAMES[mine]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced size: a 64^3 crop of the CT and 64^3 patches for the peers, 1 warm-up + 3 runs")
    parser.add_argument("--image", help=f"the CT (default: {DEFAULT_CT.relative_to(REPO.parent)})")
    parser.add_argument("--label", help="a label map whose --label-value region places the click (default: the "
                                        "default CT's heart)")
    parser.add_argument("--label-value", type=int, default=1)
    parser.add_argument("--prompts", nargs=2, default=["heart", "aorta"], help="first and second text prompt")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per tool before it is reported as failed")
    parser.add_argument("--json", help="write the full report here")
    parser.add_argument("--markdown", help="write the tables here")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", choices=list(PREPARE), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker or args.prepare:
        sys.path.insert(0, str(REPO))
        run_worker(args.worker or args.prepare, args.spec, args.out, prepare=bool(args.prepare))
        return
    sys.path.insert(0, str(REPO))
    started = time.perf_counter()
    report = run_all(args)
    report["total_wall_s"] = time.perf_counter() - started
    report["markdown"] = markdown(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(report["markdown"] + "\n")
    print(report["markdown"])
    print(f"total {report['total_wall_s']:.0f} s")


if __name__ == "__main__":
    main()
