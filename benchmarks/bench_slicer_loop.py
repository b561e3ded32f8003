"""Click -> updated segment, measured through the Slicer module's headless Logic (the interactive loop).

Runs the same code path as a click in Slicer: InteractiveLoop.add_click -> Logic.start_segmentation (main
thread) -> the persistent worker thread (cached session: only the windows around the click are decoded,
the segment's last result fed back) -> finish_segmentation writes the segment into a real MRML scene
(slicer-core). The volume is the bundled 3 mm sample abdomen CT, the model the bundled default model (refsam3d-lite).

    python benchmarks/bench_slicer_loop.py --device cpu --json out.json

Reported: the first text prompt (model load + volume encoding + decoding + write), a second text prompt on
the cached session, and the median / max over --repeats clicks of click -> segment updated in the scene
(alternating include clicks inside and exclude clicks just outside the current segment), of which the
engine's own time (the rest is reading/writing the scene and the thread hand-over), plus undo time.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(REPO / "Testing"))  # slicer_headless: a real MRML scene without the Slicer app
sys.path.insert(0, str(REPO / "RefSAM3DSlicer"))
from timing import benchmark_parser, environment, write_json  # noqa: E402


def load_sample_ct():
    """The bundled sample CT as a scalar volume node (voxels and IJK->RAS exactly as the reader gives them)."""
    import slicer

    from RefSAM3DLib.commands.demo import sample_ct_path
    from RefSAM3DLib.io.readers import read_volume

    volume = read_volume(sample_ct_path())
    node = slicer.util.addVolumeFromArray(np.ascontiguousarray(volume.array.transpose(2, 1, 0)),
                                          np.asarray(volume.geometry.affine), "sample CT")
    return node, volume


def click_points(mask: np.ndarray, affine: np.ndarray, count: int, seed: int = 0) -> list[tuple[tuple, bool]]:
    """Alternating include clicks inside the segment and exclude clicks in a 2-voxel shell outside it."""
    from scipy.ndimage import binary_dilation

    rng = np.random.default_rng(seed)
    inside = np.argwhere(mask)
    shell = np.argwhere(binary_dilation(mask, iterations=2) & ~mask)
    points = []
    for index in range(count):
        pool, positive = (inside, True) if index % 2 == 0 or len(shell) == 0 else (shell, False)
        ijk = pool[rng.integers(len(pool))]
        points.append((tuple((affine @ np.array([*ijk, 1.0]))[:3]), positive))
    return points


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=6)
    parser.add_argument("--model", default="refsam3d-lite")
    parser.add_argument("--text", default="liver")
    args = parser.parse_args()

    from RefSAM3DSlicerLib import ModelWorker, RefSAM3DLogic, RefSAM3DSettings
    from RefSAM3DSlicerLib.interaction import InteractiveLoop
    from slicer_headless import init_headless_slicer

    scene = init_headless_slicer()
    node, volume = load_sample_ct()
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "bench")
    logic = RefSAM3DLogic(worker=ModelWorker(), settings=RefSAM3DSettings(model=args.model, device=args.device))
    loop = InteractiveLoop(logic)

    def timed(action) -> float:
        start = time.perf_counter()
        action()
        loop.wait(poll_seconds=0.002)
        assert not loop.reports[-1].error, loop.reports[-1].message
        return time.perf_counter() - start

    try:
        first_text = timed(lambda: loop.start_text(node, segmentation, args.text))
        segment_id = loop.current.segment_id
        if segment_id is None:
            raise SystemExit(f"'{args.text}' was not found in the sample CT; pick another --text")
        second_text = timed(lambda: loop.start_text(node, segmentation, args.text))
        mask = loop.reports[-1].outcome.results[0].mask
        clicks = []
        for ras, positive in click_points(mask, np.asarray(volume.geometry.affine), args.repeats + 1):
            clicks.append(timed(lambda ras=ras, positive=positive: loop.add_click(node, segmentation, ras, positive)))
            assert loop.reports[-1].outcome.replaced_segment_id == loop.current.segment_id
        step_seconds = [r.seconds for r in loop.reports[-args.repeats:]]
        engine_seconds = [r.outcome.results[0].timings["total_s"] for r in loop.reports[-args.repeats:]]
        undo = timed(lambda: loop.undo(scene)) if logic.can_undo else float("nan")
    finally:
        logic.shutdown()
    timed_clicks = clicks[1:]  # the first click also builds the click path's first windows
    payload = {
        **environment(torch.device(args.device)),
        "model": args.model, "volume": f"sample CT {tuple(volume.array.shape)} voxels",
        "first_text_prompt_s": round(first_text, 3), "second_text_prompt_s": round(second_text, 3),
        "first_click_s": round(clicks[0], 3),
        "click_to_updated_segment_median_s": round(statistics.median(timed_clicks), 3),
        "click_to_updated_segment_max_s": round(max(timed_clicks), 3),
        "loop_step_median_s": round(statistics.median(step_seconds), 3),
        "of_which_engine_median_s": round(statistics.median(engine_seconds), 3),
        "undo_s": round(undo, 3), "clicks": len(timed_clicks), "torch_threads": torch.get_num_threads(),
    }
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
