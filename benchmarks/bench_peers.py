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

Each peer's worker is its own module (``peer_nninteractive.py``, ``peer_voxtell.py``, ``peer_vista3d.py``,
``peer_refsam3d.py``; shared recorder in ``peer_common.py``), where each architecture number is cited next to it
(``NNINTERACTIVE_ARCH``, ``VOXTELL_ARCH``, ``VISTA3D_BUNDLE``). A peer that cannot be installed or built is reported as "not available: <reason>".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import QUICK_PATCH, Recorder, peak_mb, setup_threads  # noqa: E402
from peer_nninteractive import prepare_nninteractive, worker_nninteractive  # noqa: E402
from peer_refsam3d import worker_refsam3d  # noqa: E402
from peer_vista3d import worker_vista3d  # noqa: E402
from peer_voxtell import prepare_voxtell, worker_voxtell  # noqa: E402

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


WORKERS = {"nninteractive": worker_nninteractive, "voxtell": worker_voxtell, "vista3d": worker_vista3d}
PREPARE = {"nninteractive": prepare_nninteractive, "voxtell": prepare_voxtell}


def run_worker(tool: str, spec_path: str, out_path: str, prepare: bool) -> None:
    spec = json.loads(Path(spec_path).read_text())
    spec["tool"] = tool
    setup_threads(spec["threads"])
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
                  "process_peak_rss_mb": max([rec.load_peak_mb or 0.0, peak_mb(), *rec.peaks.values()]),
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
