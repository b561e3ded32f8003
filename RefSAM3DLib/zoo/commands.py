"""The model zoo as plain functions for the command line and the Slicer module.

They return values (a table as text, a path) instead of printing, so the CLI, the GUI and tests
can present or check them as they need.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .cache import cached_path
from .catalogue import ModelEntry, bundled_path, get_entry, load_catalogue
from .download import part_path
from .resolve import resolve_entry, resolve_model


def _human_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "?"
    size = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size_bytes} B"


def _location(entry: ModelEntry) -> tuple[str, int | None]:
    """Where the file is now, and its size on disk if it is there."""
    if entry.bundled and bundled_path(entry).is_file():
        return "bundled", bundled_path(entry).stat().st_size
    cached = cached_path(entry)
    if cached.is_file():
        return f"cached ({cached})", cached.stat().st_size
    if part_path(cached).is_file():
        return "partly downloaded (will resume)", None
    if entry.bundled and entry.url is None:
        return "bundled file missing", None
    return "not downloaded", None


def list_models(catalogue: Sequence[ModelEntry] | None = None) -> str:
    """A text table of the catalogue: name, version, config, size, and where the file is."""
    catalogue = load_catalogue() if catalogue is None else list(catalogue)
    header = ("name", "version", "config", "size", "where")
    rows = []
    for entry in catalogue:
        where, size_on_disk = _location(entry)
        rows.append((entry.name, entry.version, entry.config, _human_size(entry.size_bytes or size_on_disk), where))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def download_model(name: str, catalogue: Sequence[ModelEntry] | None = None) -> Path:
    """Make a catalogue model available locally (download into the cache if needed) and return its path."""
    return resolve_entry(get_entry(name, catalogue), download=True)


def model_path(name: str, catalogue: Sequence[ModelEntry] | None = None) -> Path:
    """The local file of a model name or path, never downloading."""
    return resolve_model(name, download=False, catalogue=catalogue)
