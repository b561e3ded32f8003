"""How much memory the server's sessions hold, and giving freed memory back to the operating system.

``held_bytes`` walks an engine session's attributes (tensors, arrays, and the containers and objects holding them)
without knowing their names, so it keeps counting when the engine's internals change; the model and the predictor
are shared by all sessions and are not counted. Each tensor storage and array buffer is counted once.
``release_freed_memory`` runs after sessions are dropped: Python's collector, PyTorch's CUDA cache, and glibc's
``malloc_trim`` (freed heap pages otherwise stay in the process, and its RSS would never come back down).
"""
from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys

import numpy as np

log = logging.getLogger(__name__)
_MAX_DEPTH = 6


def held_bytes(root: object, skip: tuple = ()) -> int:
    """Bytes of tensor storages and array buffers reachable from ``root`` (not through ``skip`` objects or modules)."""
    torch = sys.modules.get("torch")
    seen_objects: set[int] = set()
    seen_buffers: set[int] = set()
    total = 0
    stack = [(root, 0)]
    skipped = {id(s) for s in skip}
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen_objects or id(obj) in skipped or depth > _MAX_DEPTH:
            continue
        seen_objects.add(id(obj))
        if torch is not None and isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            if storage.data_ptr() not in seen_buffers:
                seen_buffers.add(storage.data_ptr())
                total += storage.nbytes()
            continue
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            if id(base) not in seen_buffers:
                seen_buffers.add(id(base))
                total += base.nbytes
            continue
        if isinstance(obj, (str, bytes, int, float, bool, type(None), type)) or callable(obj) and not hasattr(
                obj, "__dict__"):
            continue
        if torch is not None and isinstance(obj, torch.nn.Module):
            continue
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for v in obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((v, depth + 1) for v in obj)
        elif hasattr(obj, "__dict__"):
            stack.extend((v, depth + 1) for v in vars(obj).values())
    return total


def process_rss_bytes() -> int | None:
    """The server process's resident memory (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def physical_memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            log.debug("malloc_trim is not available")
