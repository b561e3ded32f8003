"""bench_peers worker for RefSAM3D: text prompt file -> mask, a second prompt, a click refinement."""
from __future__ import annotations

import time
from pathlib import Path

from peer_common import Recorder


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
