"""Named-stage timing of the engine's own work: where a prompt's time goes, off unless asked for.

    with record_stages() as times:            # {stage name: seconds}, summed over repeats of a stage
        session = predictor.open(volume)
        session.segment(Prompt(text="liver"))
    # times == {"convert": ..., "reorient": ..., "resample": ..., "normalise": ..., "encode": ..., ...}

The engine wraps each step in ``stage(name)``; without a recorder that is one context-variable lookup.
Stages never nest, so their times add up to the work they cover. On a GPU, pass ``sync`` (e.g.
``torch.cuda.synchronize``) so that a stage is charged for the kernels it launched, not only for launching them.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_recorder: ContextVar[tuple[dict[str, float], Callable[[], None] | None] | None] = ContextVar(
    "refsam3d_stage_recorder", default=None)


@contextmanager
def record_stages(sync: Callable[[], None] | None = None) -> Iterator[dict[str, float]]:
    """Collect the seconds spent in each named stage while the block runs (this thread / context only)."""
    times: dict[str, float] = {}
    token = _recorder.set((times, sync))
    try:
        yield times
    finally:
        _recorder.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Charge the enclosed work to ``name`` when a recorder is active; otherwise do nothing."""
    active = _recorder.get()
    if active is None:
        yield
        return
    times, sync = active
    if sync is not None:
        sync()
    start = time.perf_counter()
    try:
        yield
    finally:
        if sync is not None:
            sync()
        times[name] = times.get(name, 0.0) + time.perf_counter() - start
