"""End-to-end engine timings: file -> written mask for one text prompt, a second prompt on the cached
session, one click refinement, and peak GPU memory.

    # GPU: a real-size CT (the shared abdomen CT resampled to 512x512x300 at ~0.8x0.8x1.25 mm)
    python benchmarks/bench_engine.py --device cuda --model vit_b --real-size --json out.json
    # CPU: the default model on the 3 mm shared abdomen CT (the bundled sample)
    python benchmarks/bench_engine.py --device cpu --model refsam3d-lite --json out.json

``--model`` is a catalogue name / checkpoint path, or a config preset (random weights: speed does not
depend on the weights). Medians over --repeats runs after one warm-up.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from timing import benchmark_parser, environment, peak_gb, reset_peak, sync, write_json  # noqa: E402

from RefSAM3DLib.commands.demo import sample_ct_path  # noqa: E402
from RefSAM3DLib.engine.predictor import RefSAM3DPredictor  # noqa: E402
from RefSAM3DLib.engine.prompts import Prompt  # noqa: E402
from RefSAM3DLib.io.exporters import export_segments  # noqa: E402
from RefSAM3DLib.io.geometry import VolumeGeometry  # noqa: E402
from RefSAM3DLib.io.readers import read_volume  # noqa: E402
from RefSAM3DLib.modeling.config import PRESETS, get_config  # noqa: E402
from RefSAM3DLib.modeling.refsam3d import RefSAM3D  # noqa: E402


def real_size_ct(folder: Path, shape=(512, 512, 300), spacing=(0.8, 0.8, 1.25)) -> Path:
    """The sample CT resampled (trilinear, physical coordinates) onto a clinical-size grid, padded with air."""
    import nibabel as nib
    import torch.nn.functional as F

    source = read_volume(sample_ct_path())
    centre = source.geometry.ijk_to_ras((np.asarray(source.geometry.shape) - 1)[None] / 2)[0]
    target = VolumeGeometry.from_spacing(shape, spacing, origin=centre - (np.asarray(shape) - 1) / 2 * spacing)
    ijk = [np.arange(n) for n in shape]
    # source voxel coordinates of the target grid, axis by axis (both grids are axis-aligned RAS)
    src = [(target.origin[a] + ijk[a] * spacing[a] - source.geometry.origin[a]) / source.geometry.spacing[a]
           for a in range(3)]
    norm = [torch.from_numpy(2 * s / (n - 1) - 1).float() for s, n in zip(src, source.geometry.shape)]
    grid = torch.stack(torch.meshgrid(norm[2], norm[1], norm[0], indexing="ij")[::-1], dim=-1)
    vol = torch.from_numpy(source.array.astype(np.float32)).permute(2, 1, 0)[None, None] + 1024
    out = F.grid_sample(vol, grid[None].float(), align_corners=True)[0, 0] - 1024
    array = out.permute(2, 1, 0).numpy().astype(np.int16)
    path = folder / "ct_512x512x300.nii.gz"
    nib.save(nib.Nifti1Image(array, target.affine), path)
    return path


def load_predictor(name: str, device: str) -> RefSAM3DPredictor:
    if name in PRESETS:
        return RefSAM3DPredictor(RefSAM3D(get_config(name)), device=device)
    return RefSAM3DPredictor.from_pretrained(name, device=device)


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=5)
    parser.add_argument("--model", default="refsam3d-lite")
    parser.add_argument("--real-size", action="store_true", help="use the 512x512x300 resampled CT")
    args = parser.parse_args()
    device = torch.device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="refsam3d-bench-"))
    image_path = real_size_ct(tmp) if args.real_size else sample_ct_path()
    t = time.perf_counter()
    predictor = load_predictor(args.model, args.device)
    load_s = time.perf_counter() - t
    predictor.model.text_encoder(["liver", "spleen"])  # text embeddings are cached per prompt in real use

    def file_to_mask(index: int) -> tuple[float, object, object]:
        start = time.perf_counter()
        volume = read_volume(image_path)
        session = predictor.open(volume)
        (result,) = session.segment(Prompt(text="liver"))
        export_segments(tmp / f"liver_{index}.nii.gz", [result], volume)
        sync(device)
        return time.perf_counter() - start, session, result

    file_to_mask(-1)  # warm-up (kernels, allocator)
    reset_peak(device)
    cold = [file_to_mask(i) for i in range(args.repeats)]
    session, liver = cold[-1][1], cold[-1][2]
    second, click = [], []
    centre = np.argwhere(liver.mask).mean(0) if liver.mask.any() else (np.asarray(liver.mask.shape) - 1) / 2
    point = tuple(session.volume.geometry.ijk_to_ras(centre[None])[0])
    for _ in range(args.repeats):
        t = time.perf_counter()
        session.segment(Prompt(text="spleen"))
        sync(device)
        second.append(time.perf_counter() - t)
        t = time.perf_counter()
        session.segment(Prompt(text="liver", points=[point], previous=liver))
        sync(device)
        click.append(time.perf_counter() - t)
    timings = cold[-1][2].timings
    shape = session.volume.geometry.shape
    write_json(args.json, {
        "model": args.model, "config": predictor.model.config.name, **environment(device),
        "input": f"{image_path.name} {shape[0]}x{shape[1]}x{shape[2]}",
        "model_grid": list(session.space.model_shape), "windows": len(session.volume_windows()),
        "method": f"median of {args.repeats} after 1 warm-up; file->mask = read + resample + encode + decode + "
                  f"write .nii.gz; text embeddings cached", "model_load_s": load_s,
        "file_to_mask_s": statistics.median(c[0] for c in cold), "second_prompt_s": statistics.median(second),
        "click_refinement_s": statistics.median(click), "last_run_breakdown_s": timings,
        "peak_gpu_gb": peak_gb(device)})


if __name__ == "__main__":
    main()
