"""bench_peers worker for nnInteractive: its ResEnc-L network (random weights) in its own inference session."""
from __future__ import annotations

import json
import time
from pathlib import Path

from peer_common import QUICK_PATCH, Recorder, count_forwards, ras_to_ijk

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
    forwards = count_forwards(session.network)
    # nnInteractive takes sitk's array as it is, [z, y, x]; a click is an index into it
    point = [float(v) for v in ras_to_ijk(spec["image"], spec["point"])[::-1]]
    point2 = [float(v) for v in ras_to_ijk(spec["image"], spec["point2"])[::-1]]
    out = Path(spec["out_dir"]) / "nninteractive.nii.gz"

    def first():
        image = sitk.ReadImage(spec["image"])
        array = sitk.GetArrayFromImage(image)[None]
        session.set_image(array)
        target = torch.zeros(array.shape[1:], dtype=torch.uint8)
        session.set_target_buffer(target)
        session.add_point_interaction(point, include_interaction=True)
        mask = sitk.GetImageFromArray(target.numpy())
        mask.CopyInformation(image)
        sitk.WriteImage(mask, str(out))

    def followup():
        session.add_point_interaction(point2, include_interaction=True)

    for i in range(spec["warmup"] + spec["repeats"]):
        timed = i >= spec["warmup"]
        rec.run_counting("first_interaction", first, timed, forwards)
        if timed:  # the follow-up runs the same network pass, warmed by the first interaction (saves ~40 s at 192^3)
            rec.run_counting("followup_click", followup, timed, forwards)
    patch = session.configuration_manager.patch_size
    return {"weights": "random (the published weights are CC BY-NC-SA and not downloadable here)",
            "load_s": load_s, "threads": torch.get_num_threads(),
            "preprocessing": "none: the voxel grid as read (no resampling), z-score over the non-zero bounding box",
            "windows": f"patch {tuple(patch)}; network forwards per call (AutoZoom on, last run): {rec.forwards}",
            "parameters_m": sum(p.numel() for p in session.network.parameters()) / 1e6}
