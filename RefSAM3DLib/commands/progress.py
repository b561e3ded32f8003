"""tqdm progress bars for engine callbacks (the engine reports fractions; the CLI draws bars)."""
from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    """Callable progress(fraction, message) -> a tqdm bar on stderr; close() when done."""

    def __init__(self, description: str, enabled: bool = True) -> None:
        self._bar = tqdm(total=1000, desc=description, unit="", bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                         "{elapsed}<{remaining} {postfix}", file=sys.stderr, disable=not enabled, leave=False)
        self._last = 0

    def __call__(self, fraction: float, message: str = "") -> None:
        value = int(round(1000 * min(max(fraction, 0.0), 1.0)))
        if value > self._last:
            self._bar.update(value - self._last)
            self._last = value
        if message:
            self._bar.set_postfix_str(message, refresh=False)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
