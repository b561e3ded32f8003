"""Where downloaded model files are kept between runs.

One folder per user (``~/.cache/refsam3d``) so a 375 MB download happens once; ``REFSAM3D_CACHE``
moves it (shared drives, read-only homes, tests). The folder is created only when written to.
"""
from __future__ import annotations

import os
from pathlib import Path

from .catalogue import ModelEntry

CACHE_ENV = "REFSAM3D_CACHE"


def cache_dir() -> Path:
    """The cache folder: ``$REFSAM3D_CACHE`` if set (and non-empty), else ``~/.cache/refsam3d``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "refsam3d"


def cached_path(entry: ModelEntry) -> Path:
    """Where ``entry``'s file is (or will be) in the cache; it may not exist yet."""
    return cache_dir() / entry.file
