"""What every worker of ``bench_peers.py`` shares: a recorder of named measures (median time, peak resident
memory per measure), thread setup, click coordinates and a network-forward counter."""
from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path

import numpy as np

QUICK_PATCH = 64  # --quick: every peer's patch shrinks to 64^3 (all their U-Nets divide it), the CT to a 64^3 crop


def reset_peak() -> bool:
    """Reset this process's peak resident set (Linux clear_refs 5); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
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
        self.forwards: dict[str, int] = {}  # network forwards of the last call of each counted measure

    def run(self, name: str, fn, timed: bool):
        if self.load_peak_mb is None:
            self.load_peak_mb = peak_mb()
        self.peak_resets &= reset_peak()
        start = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - start
        if timed:
            self.times.setdefault(name, []).append(elapsed)
            self.peaks[name] = max(self.peaks.get(name, 0.0), peak_mb())
        return out

    def run_counting(self, name: str, fn, timed: bool, counter: list[int]):
        """``run``, also recording how many network forwards (``count_forwards``) the call made."""
        before = counter[0]
        out = self.run(name, fn, timed)
        self.forwards[name] = counter[0] - before
        return out

    def summary(self) -> dict:
        return {name: {"median_s": statistics.median(ts), "runs_s": ts, "peak_rss_mb": self.peaks[name]}
                for name, ts in self.times.items()}


def setup_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)


def ras_to_ijk(path: str, ras) -> np.ndarray:
    from RefSAM3DLib.io.readers import read_volume

    return read_volume(path).geometry.ras_to_ijk(np.asarray([ras], dtype=float))[0]


def count_forwards(module) -> list[int]:
    counter = [0]

    def hook(*_):
        counter[0] += 1

    module.register_forward_hook(hook)
    return counter
