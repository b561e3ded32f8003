"""Turn what a user typed (--model) into a model file on disk.

Order, most explicit first: an existing file path; a catalogue name whose file ships in the
package; the same name already in the cache (its SHA-256 checked once, then remembered); and only
then a download into the cache. A user who passes a path never triggers network access, and an
offline machine gets a message saying which file to fetch and where to put it.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from .cache import cached_path
from .catalogue import ModelEntry, bundled_path, find_entry, known_names, load_catalogue
from .download import download as download_file
from .download import manual_placement_hint
from .errors import ChecksumMismatchError, ModelUnavailableError, UnknownModelError
from .integrity import sha256_of, verify_once

log = logging.getLogger(__name__)


@lru_cache(maxsize=16)
def _bundled_digest(path: str, size: int, mtime_ns: int) -> str:
    """Bundled files cannot carry a marker (the package folder may be read-only), so hash once per process."""
    return sha256_of(path)


def _checked_bundled(entry: ModelEntry, path: Path) -> Path:
    if entry.sha256 is None:
        log.info("%s: no sha256 in the catalogue yet, using the bundled %s without a checksum check", entry.name, path)
        return path
    stat = path.stat()
    actual = _bundled_digest(str(path), stat.st_size, stat.st_mtime_ns)
    if actual != entry.sha256.lower():
        raise ChecksumMismatchError(f"bundled model {path} has sha256 {actual}, expected {entry.sha256.lower()}: "
                                    f"the installation is damaged, reinstall RefSAM3D")
    return path


def _checked_cached(entry: ModelEntry, path: Path) -> Path:
    if entry.size_bytes is not None and path.stat().st_size != entry.size_bytes:
        raise ChecksumMismatchError(f"{path} has {path.stat().st_size} bytes, expected {entry.size_bytes} "
                                    f"(incomplete copy?): delete it and download it again")
    if entry.sha256 is not None:
        verify_once(path, entry.sha256)
    return path


def resolve_entry(entry: ModelEntry, download: bool = True) -> Path:
    """The file of a catalogue entry: bundled, else cached, else downloaded into the cache if allowed."""
    if entry.bundled:
        path = bundled_path(entry)
        if path.is_file():
            return _checked_bundled(entry, path)
        if entry.url is None:
            raise ModelUnavailableError(f"bundled model file {path} is missing (incomplete installation): reinstall "
                                        f"RefSAM3D or pass --model /path/to/{entry.file}")
    cached = cached_path(entry)
    if cached.is_file():
        return _checked_cached(entry, cached)
    if not download:
        raise ModelUnavailableError(f"model {entry.name!r} is not downloaded yet: download it with the model zoo, or "
                                    f"{manual_placement_hint(entry.url, cached)}")
    return download_file(entry.url, cached, sha256=entry.sha256, size_bytes=entry.size_bytes)


def resolve_model(name_or_path: str | Path, download: bool = True,
                  catalogue: Sequence[ModelEntry] | None = None) -> Path:
    """A path to an existing model file for a file path or a catalogue name (see the module docstring)."""
    text = str(name_or_path).strip()
    candidate = Path(text).expanduser()
    if text and candidate.is_file():
        return candidate.resolve()
    catalogue = load_catalogue() if catalogue is None else list(catalogue)
    entry = find_entry(text, catalogue)
    if entry is None:
        what = "a folder, not a model file," if text and candidate.is_dir() else "not a file and"
        raise UnknownModelError(f"unknown model {text!r}: {what} not in the catalogue (known: {known_names(catalogue)})")
    return resolve_entry(entry, download=download)
