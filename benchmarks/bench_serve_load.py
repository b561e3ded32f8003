"""Many clients at once against one `refsam3d serve` on loopback: failures, mixed-up sessions, memory (issue 19).

    python benchmarks/bench_serve_load.py --clients 20 --prompts 50 --json load.json

The server runs in its own process, by default with the tiny test configuration (random weights: a click costs
milliseconds, so 1000 prompts take minutes on 2 CPU cores and the serving layer, not the model, is what is measured;
``--model refsam3d-lite`` uses the bundled model, ~2 s per click on that CPU). Each client uploads its own small CT
(a different shape and seed per client, so an answer from another client's session could not pass for its own),
then sends --prompts click prompts cycling through five clicks, all clients at the same time. Checked for every
answer: the request succeeded; it names the client's session and has the client's volume shape; and its mask is
identical to the first answer to the same click (the same click on the same session must give the same mask).
The server's resident memory (its /v1/info) is read at start, after one warm-up client, at its peak during the
run (sampled every 0.25 s) and after every session has expired (--idle-seconds without prompts).
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "Testing" / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_process import ServerProcess  # noqa: E402
from timing import benchmark_parser, write_json  # noqa: E402

from RefSAM3DLib.engine.prompts import Prompt  # noqa: E402
from RefSAM3DLib.io.geometry import VolumeGeometry  # noqa: E402
from RefSAM3DLib.io.volume import Volume  # noqa: E402
from RefSAM3DLib.serving.client import ServerClient  # noqa: E402


def small_ct(index: int) -> Volume:
    """A CT-like volume of 3 mm voxels, its shape and noise depending on ``index``: air, a body, two organs."""
    shape = (40 + index % 5, 38 + index % 3, 30 + index % 4)
    rng = np.random.default_rng(index)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    c = [n / 2 for n in shape]
    body = ((i - c[0]) / (shape[0] * 0.42)) ** 2 + ((j - c[1]) / (shape[1] * 0.4)) ** 2 < 1
    array = np.where(body, 40.0, -1000.0) + rng.normal(0, 10, shape)
    array[((i - c[0] * 0.7) ** 2 + (j - c[1]) ** 2 + (k - c[2]) ** 2) < 36] = 150
    array[((i - c[0] * 1.3) ** 2 + (j - c[1] * 1.1) ** 2 + (k - c[2] * 0.8) ** 2) < 25] = 300
    geometry = VolumeGeometry.from_spacing(shape, (3.0, 3.0, 3.0), origin=(-60.0, -57.0, -45.0 - index))
    return Volume(array.astype(np.int16), geometry, modality="CT", source=f"client{index}.nii.gz")


def clicks(volume: Volume) -> list[Prompt]:
    fractions = [(0.35, 0.5, 0.5), (0.65, 0.55, 0.4), (0.5, 0.5, 0.5), (0.35, 0.45, 0.6), (0.6, 0.5, 0.5)]
    prompts = []
    for n, f in enumerate(fractions):
        ijk = [[(s - 1) * v for s, v in zip(volume.array.shape, f)]]
        prompts.append(Prompt(points=[tuple(volume.geometry.ijk_to_ras(ijk)[0])], point_labels=[n != 3]))
    return prompts


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=1)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--model", default="tiny", help="'tiny' (random test weights), a zoo name or a checkpoint")
    parser.add_argument("--threads", type=int, default=2, help="the server's PyTorch threads")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()

    model = args.model
    if model == "tiny":
        import tempfile

        from engine_fixtures import tiny_model
        from server_process import save_model

        model = save_model(tiny_model(), Path(tempfile.mkdtemp(prefix="refsam3d-load-")) / "tiny.pt")
    server = ServerProcess(model, "--no-anatomy-prior", "--session-idle-minutes", str(args.idle_seconds / 60), "--max-sessions",
                           str(args.clients + 4), device=args.device if args.device != "auto" else "cpu",
                           threads=args.threads, warm_up=True)
    server.start()
    probe = ServerClient(server.url)
    rss = {"start": probe.info(refresh=True)["rss_bytes"]}
    try:
        warm = probe.open(small_ct(1000))
        for prompt in clicks(small_ct(1000)):
            warm.segment(prompt)
        warm.close()
        time.sleep(1.0)
        rss["after warm-up client (session closed)"] = probe.info(refresh=True)["rss_bytes"]

        peak = [0]
        running = threading.Event()
        running.set()

        def watch() -> None:
            while running.is_set():
                peak[0] = max(peak[0], probe.info(refresh=True)["rss_bytes"])
                time.sleep(0.25)

        failures: list[str] = []
        mixups: list[str] = []
        latencies: list[float] = []
        lock = threading.Lock()
        start_gate = threading.Barrier(args.clients)

        def client(index: int) -> None:
            volume = small_ct(index)
            asked = clicks(volume)
            first: dict[int, np.ndarray] = {}
            try:
                remote = ServerClient(server.url).open(volume)
            except Exception as error:  # noqa: BLE001 - counted, reported below
                with lock:
                    failures.append(f"client {index} upload: {error}")
                start_gate.abort()
                return
            start_gate.wait()
            for n in range(args.prompts):
                k = n % len(asked)
                began = time.perf_counter()
                try:
                    result, = remote.segment(asked[k])
                except Exception as error:  # noqa: BLE001
                    with lock:
                        failures.append(f"client {index} prompt {n}: {error}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - began)
                wrong = None
                if result.session_token != remote.id or result.mask.shape != volume.array.shape:
                    wrong = f"client {index} prompt {n}: answer of session {result.session_token}"
                elif k in first and not np.array_equal(first[k], result.mask):
                    wrong = f"client {index} prompt {n}: mask differs from the first answer to click {k}"
                first.setdefault(k, result.mask)
                if wrong:
                    with lock:
                        mixups.append(wrong)
            if remote.uploads != 1:
                with lock:
                    mixups.append(f"client {index}: uploaded {remote.uploads} times (session expired mid-run)")

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        began = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        running.clear()
        watcher.join()
        info = probe.info(refresh=True)
        rss["peak during the run"] = peak[0]
        sessions_after_run = info["sessions"]
        deadline = time.monotonic() + args.idle_seconds * 3 + 60
        while probe.info(refresh=True)["sessions"] and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1.0)
        final = probe.info(refresh=True)
        rss["after every session expired"] = final["rss_bytes"]
    finally:
        server.stop()

    requests = args.clients * args.prompts
    report = {
        "clients": args.clients, "prompts_per_client": args.prompts, "requests": requests,
        "failed_requests": len(failures), "mixed_up_answers": len(mixups), "examples": (failures + mixups)[:5],
        "wall_s": round(wall, 1), "prompts_per_s": round(requests / wall, 1),
        "latency_s": {"median": round(statistics.median(latencies), 3),
                      "p95": round(float(np.quantile(latencies, 0.95)), 3), "max": round(max(latencies), 3)},
        "sessions_after_run": sessions_after_run, "sessions_after_expiry": final["sessions"],
        "expired": final["stats"]["dropped_idle"],
        "rss_mb": {k: round(v / 1e6) for k, v in rss.items()},
        "rss_after_expiry_vs_start": round(rss["after every session expired"] / rss["start"], 3),
        "rss_after_expiry_vs_warm_up": round(rss["after every session expired"]
                                             / rss["after warm-up client (session closed)"], 3),
        "server_threads": args.threads, "model": args.model,
    }
    write_json(args.json, report)


if __name__ == "__main__":
    main()
