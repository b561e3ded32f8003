"""Progress and cancel between units of work: the two callbacks every long engine step honours."""
from __future__ import annotations

from .errors import Cancelled


def check_cancel(cancel) -> None:
    """``cancel``: a threading.Event-like object or a callable; raises Cancelled when it is set."""
    if cancel is None:
        return
    flag = cancel.is_set() if hasattr(cancel, "is_set") else cancel()
    if flag:
        raise Cancelled("cancelled by the user; nothing was changed")


def report(progress, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(min(1.0, done / max(total, 1)), message)
