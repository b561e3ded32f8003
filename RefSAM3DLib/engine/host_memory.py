"""Freed host memory kept for reuse, so the slice encoder's large tensors do not page-fault in afresh every slice.

Why: LiteMedSAM's encoder runs its first stage at the full 256 x 256 input with 256 channels; those tensors
(33 MB in bfloat16, 67 MB in float32) are above glibc's largest mmap threshold (32 MB), so each is mapped from the
kernel when made and unmapped when freed, and the next slice faults every page of it in again -- a fifth of the
engine's time on a box on the CPU (benchmarks/RESULTS.md). With mmap off and a high trim threshold, glibc keeps
freed blocks in its heap and hands them out again, as jemalloc and tcmalloc (PyTorch's CPU tuning guide) do by
design. The cost is memory returned later, not at once: peak resident memory +~250 MB on the benchmark's box, and
what a prompt freed is given back when it ends (``release_freed_memory``, glibc's malloc_trim) -- without that, a
long-lived process (Slicer, a server, the test suite) held the high-water mark of its fragmented heap.

Applied once per process, by a predictor that runs on the CPU, on Linux with glibc only (elsewhere the allocator
is left as it is); ``REFSAM3D_KEEP_FREED_MEMORY=0`` leaves it alone everywhere.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
KEEP_BYTES = 1 << 30  # freed memory at the heap's top is returned to the system only above this

_applied: bool | None = None
_libc = None


def keep_freed_memory() -> bool:
    """Ask glibc to serve large blocks from its heap and keep what is freed; True when it is in effect."""
    global _applied, _libc
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("REFSAM3D_KEEP_FREED_MEMORY", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)) and bool(mallopt(M_MMAP_MAX, 0))
    _libc = libc if _applied else None
    return _applied


def release_freed_memory() -> None:
    """Give the memory freed so far back to the system (where ``keep_freed_memory`` is in effect): at the end of a
    prompt, so reuse lasts a prompt's slices and an idle process holds only what it still uses."""
    if _libc is not None:
        _libc.malloc_trim(0)
