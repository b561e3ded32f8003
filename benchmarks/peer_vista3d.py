"""bench_peers worker for VISTA3D: MONAI's vista3d132 with the bundle's preprocessing and sliding window."""
from __future__ import annotations

import time

import numpy as np
from peer_common import QUICK_PATCH, Recorder, count_forwards

# VISTA3D: MONAI's vista3d132 (monai/networks/nets/vista3d.py) as the MONAI bundle builds it; the bundle's
# configs/inference.json (Project-MONAI/model-zoo models/vista3d): resample to 1.5 mm (Spacingd, bilinear),
# CropForegroundd margin 10, ScaleIntensityRanged -963.82..1053.68 HU -> 0..1, Orientationd RAS; patch 128^3,
# sw_batch_size 1, overlap 0.3, Gaussian blending; point prompts through point_based_window_inferer (one window
# centred on the click); outputs inverted to the input grid (Invertd, nearest) and saved as float32.
# Class indices from the bundle's metadata.json channel_def (liver 1, spleen 3, aorta 6, heart 115).
VISTA3D_BUNDLE = {"spacing": [1.5, 1.5, 1.5], "patch": 128, "overlap": 0.3, "a_min": -963.8247715525971,
                  "a_max": 1053.678477684517, "crop_margin": 10}
VISTA3D_CLASSES = {"liver": 1, "kidney": 2, "spleen": 3, "pancreas": 4, "aorta": 6, "heart": 115}


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
    forwards = count_forwards(network)
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

    for i in range(spec["warmup"] + spec["repeats"]):
        timed = i >= spec["warmup"]
        rec.run_counting("auto_class", auto_class, timed, forwards)
        rec.run_counting("point_prompt", point_prompt, timed, forwards)
    shape = tuple(state["data"]["image"].shape[1:])
    return {"weights": "random (bundle weights not downloadable here)", "load_s": load_s,
            "threads": torch.get_num_threads(),
            "preprocessing": f"resample to 1.5 mm, crop foreground, HU window, RAS: {shape} voxels",
            "windows": f"patch {tuple(patch)}, overlap {bundle['overlap']}; network forwards per call: {rec.forwards}",
            "parameters_m": sum(p.numel() for p in network.parameters()) / 1e6}
