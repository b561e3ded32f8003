"""What computing on a server costs over computing here, on loopback: per click, per first prompt, per upload.

    python benchmarks/bench_serve.py --json serve.json                  # sample CT and a 512 x 512 x 300 CT
    python benchmarks/bench_serve.py --quick                            # sample CT only, 4 clicks

One run measures both sides on the same CT with the same model (the bundled refsam3d-lite) and the same number of
PyTorch threads: the engine in this process ("local") and `refsam3d serve` in another process reached through the
client over HTTP on 127.0.0.1 ("server"). The local engine runs on one persistent worker thread, as in the Slicer
module (ModelWorker) and in the server: on this 2-core CPU the engine ran 2-3x slower on a process's main thread
(measured while building this benchmark), which would flatter the server. Clicks alternate between the two, each refining its own side's previous
result (the interactive loop's path), which side goes first alternating from click to click, so both see the same
machine load; the masks of both sides are compared.
Reported per CT: the upload (compress, send, decode, check: ``ServerClient.open``; its repeat from the kept bytes),
the first text prompt (local: open + segment; server: segment on the fresh upload, the server opening its session
inside it), and per click the median of local, of server (round trip), their ratio and paired difference, and the
serving overhead: the round trip minus the engine's own time on the server (HTTP, request handling, compression and
(de)serialisation on both sides), as a share of the local click.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "Testing" / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import real_size_ct  # noqa: E402
from bench_slicer_loop import click_points  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from timing import benchmark_parser, environment, write_json  # noqa: E402

from RefSAM3DLib.commands.demo import sample_ct_path  # noqa: E402
from RefSAM3DLib.engine.predictor import RefSAM3DPredictor  # noqa: E402
from RefSAM3DLib.engine.prompts import Prompt  # noqa: E402
from RefSAM3DLib.io.readers import read_volume  # noqa: E402
from RefSAM3DLib.serving.client import ServerClient  # noqa: E402

WORKER = ThreadPoolExecutor(1, thread_name_prefix="local-engine")


def timed(action):
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def on_worker(action):
    """The local engine's work on its persistent thread (the Slicer module's ModelWorker does the same)."""
    return lambda: WORKER.submit(action).result()


def measure(name: str, volume, predictor, client: ServerClient, text: str, clicks: int, uploads: int) -> dict:
    upload_s, reupload_s = [], []
    for _ in range(uploads):
        seconds, remote = timed(lambda: client.open(volume))
        upload_s.append(seconds)
        reupload_s.append(timed(remote.upload)[0])
        remote.close()
    payload_mb = sum(len(p) for p in remote._parts) / 1e6
    local_first, (session, local_result) = timed(on_worker(lambda: (lambda s: (s, s.segment(Prompt(text=text))[0]))(
        predictor.open(volume))))
    upload_first, remote = timed(lambda: client.open(volume))
    server_first, (remote_result,) = timed(lambda: remote.segment(Prompt(text=text)))
    if not local_result.mask.any():
        raise SystemExit(f"'{text}' was not found in {name}; pick another --text")
    rows = []
    previous_local, previous_remote = local_result, remote_result
    for index, (ras, positive) in enumerate(click_points(local_result.mask, np.asarray(volume.geometry.affine),
                                                         clicks)):
        def local_click():
            return timed(on_worker(lambda: session.segment(
                Prompt(points=[ras], point_labels=[positive], previous=previous_local))))

        def remote_click():
            return timed(lambda: remote.segment(Prompt(points=[ras], point_labels=[positive],
                                                       previous=previous_remote)))

        if index % 2:
            remote_s, (previous_remote,) = remote_click()
            local_s, (previous_local,) = local_click()
        else:
            local_s, (previous_local,) = local_click()
            remote_s, (previous_remote,) = remote_click()
        rows.append({"local_s": local_s, "server_s": remote_s, "transport_s": previous_remote.timings["transport_s"],
                     "overhead_s": remote_s - previous_remote.timings["total_s"],
                     "server_engine_s": previous_remote.timings["total_s"],
                     "same_mask": bool(np.array_equal(previous_local.mask, previous_remote.mask))})
    fresh = []  # click prompts without a previous result: the same work on both sides, whatever came before
    for ras, _positive in click_points(local_result.mask, np.asarray(volume.geometry.affine), 3, seed=1):
        prompt = Prompt(points=[ras], point_labels=[True])
        local_s, (local_fresh,) = timed(on_worker(lambda prompt=prompt: session.segment(prompt)))
        remote_s, (remote_fresh,) = timed(lambda prompt=prompt: remote.segment(prompt))
        fresh.append({"local_s": local_s, "server_s": remote_s, "server_engine_s": remote_fresh.timings["total_s"],
                      "same_mask": bool(np.array_equal(local_fresh.mask, remote_fresh.mask))})
    remote.close()
    timed_rows = rows[1:]  # the first click also builds the click path's first windows, on both sides

    def median(key: str) -> float:
        return statistics.median(r[key] for r in timed_rows)

    local_click = median("local_s")
    paired = statistics.median(r["server_s"] - r["local_s"] for r in timed_rows)
    return {
        "ct": name, "shape": list(volume.array.shape), "upload_payload_mb": round(payload_mb, 1),
        "raw_mb": round(volume.array.nbytes / 1e6, 1),
        "upload_s": [round(s, 3) for s in upload_s], "upload_median_s": round(statistics.median(upload_s), 3),
        "reupload_from_kept_bytes_median_s": round(statistics.median(reupload_s), 3),
        "first_prompt_local_s": round(local_first, 3), "first_prompt_server_s": round(server_first, 3),
        "first_prompt_ratio": round(server_first / local_first, 3),
        "first_prompt_with_upload_ratio": round((server_first + upload_first) / local_first, 3),
        "first_prompt_same_mask": bool(np.array_equal(local_result.mask, remote_result.mask)),
        "clicks_timed": len(timed_rows), "click_local_median_s": round(local_click, 3),
        "click_server_median_s": round(median("server_s"), 3),
        "click_ratio": round(median("server_s") / local_click, 3),
        "click_paired_difference_median_s": round(paired, 4),
        "click_server_engine_median_s": round(median("server_engine_s"), 3),
        "click_transport_median_s": round(median("transport_s"), 4),
        "click_serving_overhead_median_s": round(median("overhead_s"), 4),
        "click_serving_overhead_share_of_local": round(median("overhead_s") / local_click, 4),
        "clicks_same_mask": all(r["same_mask"] for r in rows),
        "fresh_clicks_same_mask": all(r["same_mask"] for r in fresh),
        "fresh_click_local_median_s": round(statistics.median(r["local_s"] for r in fresh), 3),
        "fresh_click_server_median_s": round(statistics.median(r["server_s"] for r in fresh), 3),
    }


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=1)
    parser.add_argument("--model", default="refsam3d-lite")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads on both sides")
    parser.add_argument("--text", default="liver")
    parser.add_argument("--clicks", type=int, default=9)
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--big-ct", help="a 512 x 512 x 300 CT file (default: the sample CT resampled onto that grid)")
    parser.add_argument("--quick", action="store_true", help="sample CT only, 4 clicks, 1 upload")
    args = parser.parse_args()
    device = args.device if args.device != "auto" else "cpu"
    torch.set_num_threads(args.threads)
    server = ServerProcess(args.model, device=device, threads=args.threads, warm_up=True)
    server.start(timeout=600)
    try:
        client = ServerClient(server.url)
        predictor = RefSAM3DPredictor.from_pretrained(args.model, device=device)
        cts = [("bundled sample CT (3 mm)", read_volume(sample_ct_path()))]
        # this side's warm-up, as the server warmed up before listening
        on_worker(lambda: predictor.open(cts[0][1]).segment(Prompt(text=args.text)))()
        if not args.quick:
            big = args.big_ct or real_size_ct(Path(tempfile.mkdtemp(prefix="refsam3d-serve-bench-")))
            cts.append(("512 x 512 x 300 CT (sample CT resampled, 0.8 x 0.8 x 1.25 mm)", read_volume(big)))
        rows = [measure(name, volume, predictor, client, args.text, 5 if args.quick else args.clicks,
                        1 if args.quick else args.uploads) for name, volume in cts]
    finally:
        server.stop()
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    write_json(args.json, {**environment(torch.device(device)), "model": args.model, "threads": args.threads,
                           "loadavg_after": load, "results": rows})


if __name__ == "__main__":
    main()
