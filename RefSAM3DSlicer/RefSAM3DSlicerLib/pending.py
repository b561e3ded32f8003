"""A prompt on its way through the worker thread, and what it did once finished.

The main thread keeps a ``PendingSegmentation`` while the worker runs: it reads progress from it (the worker
writes it), asks it to cancel, and polls ``done()``. ``SegmentationOutcome`` is what the Logic reports after
writing, for the status line and for scripts.
"""
from __future__ import annotations

import threading
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field


@dataclass
class SegmentationOutcome:
    """What one Segment press did to the scene."""

    segmentation_node: object | None
    added_segment_ids: list[str] = field(default_factory=list)
    replaced_segment_id: str | None = None
    not_found: list[str] = field(default_factory=list)  # prompts judged absent (nothing was added for them)
    cancelled: bool = False
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    results: list = field(default_factory=list)  # the engine's SegmentResults (masks, presence, volume_ml)

    @property
    def segment_ids(self) -> list[str]:
        return self.added_segment_ids + ([self.replaced_segment_id] if self.replaced_segment_id else [])

    @property
    def message(self) -> str:
        return " ".join(self.messages)


class ProgressState:
    """Latest (fraction, message) of a running job; safe to write from the worker and read from the UI.

    A listener is called directly only on the thread that created the state (synchronous worker);
    otherwise the main thread polls ``value``.
    """

    def __init__(self, listener=None) -> None:
        self._lock = threading.Lock()
        self._value = (0.0, "starting")
        self._listener = listener
        self._owner = threading.get_ident()

    def __call__(self, fraction: float, message: str) -> None:
        with self._lock:
            self._value = (float(fraction), str(message))
        if self._listener is not None and threading.get_ident() == self._owner:
            self._listener(float(fraction), str(message))

    @property
    def value(self) -> tuple[float, str]:
        with self._lock:
            return self._value


@dataclass
class PendingSegmentation:
    """A prompt on its way through the worker; poll ``done()`` then pass it to ``finish_segmentation``."""

    volume_node: object
    segmentation_node: object | None
    prompts: list
    session_key: tuple
    replace_segment_id: str | None
    future: object
    progress_state: ProgressState
    cancel_event: threading.Event
    started: float
    external_cancel: object = None  # the caller's Event or callable, honoured up to the moment of writing
    rename_replaced: bool = True  # False: a refined segment keeps the name, colour and codes it has now

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        if _flag_set(self.external_cancel):
            self.cancel_event.set()
        return self.cancel_event.is_set()

    @property
    def progress(self) -> tuple[float, str]:
        return self.progress_state.value

    def done(self) -> bool:
        return self.future is not None and self.future.done()

    def wait(self, timeout: float | None = None) -> bool:
        try:
            self.future.exception(timeout=timeout)
        except (FutureTimeout, TimeoutError):
            return False
        except CancelledError:  # the executor dropped the job (module closing): done as well
            pass
        return True

    @property
    def description(self) -> str:
        return " and ".join(p.describe() for p in self.prompts)


def _flag_set(flag) -> bool:
    """A cancel flag may be a threading.Event, a plain callable, or None."""
    if flag is None:
        return False
    return bool(flag.is_set() if hasattr(flag, "is_set") else flag())
