"""The model catalogue: one JSON list, read into ``ModelEntry`` records.

Keeping the list in data (not code) lets a release add a model, or fill in a checksum after
training, without touching logic; validating it on load turns a typo into a clear message
instead of a failed download later.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CatalogueError, UnknownModelError

ZOO_DIR = Path(__file__).resolve().parent
CATALOGUE_PATH = ZOO_DIR / "catalogue.json"
BUNDLED_MODELS_DIR = ZOO_DIR / "models"
# What the CLI, the Python API and the Slicer panel use when no model is named.
DEFAULT_MODEL = "refsam3d-lite"


@dataclass(frozen=True)
class ModelEntry:
    """One downloadable or bundled model file and what is known about it."""

    name: str
    version: str
    config: str  # RefSAM3D config preset, e.g. "demo" or "vit_b"
    file: str  # file name, in the package (bundled) or in the cache
    url: str | None  # None for files that only ship inside the package
    sha256: str | None  # None when not (yet) known: the file is then used unverified
    size_bytes: int | None
    licence: str
    card: str  # model card, relative to the zoo folder
    bundled: bool
    description: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEntry:
        if not isinstance(data, dict):
            raise CatalogueError(f"catalogue entry must be an object, got {type(data).__name__}")
        name = data.get("name", "?")
        missing = [key for key in _FIELDS if key not in data]
        if missing:
            raise CatalogueError(f"catalogue entry {name!r} lacks {', '.join(missing)}")
        entry = cls(**{key: data[key] for key in _FIELDS})
        entry._validate()
        return entry

    def _validate(self) -> None:
        for key in ("name", "version", "config", "file", "licence", "card", "description"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise CatalogueError(f"catalogue entry {self.name!r}: {key} must be a non-empty string")
        if Path(self.file).name != self.file:
            raise CatalogueError(f"catalogue entry {self.name!r}: file must be a bare file name, got {self.file!r}")
        if self.url is not None and not (isinstance(self.url, str) and self.url.startswith(("https://", "http://"))):
            raise CatalogueError(f"catalogue entry {self.name!r}: url must be null or an http(s) URL")
        if self.sha256 is not None and not _is_sha256(self.sha256):
            raise CatalogueError(f"catalogue entry {self.name!r}: sha256 must be null or 64 hex digits")
        if self.size_bytes is not None and (not isinstance(self.size_bytes, int) or self.size_bytes <= 0):
            raise CatalogueError(f"catalogue entry {self.name!r}: size_bytes must be null or a positive integer")
        if not isinstance(self.bundled, bool):
            raise CatalogueError(f"catalogue entry {self.name!r}: bundled must be true or false")
        if not self.bundled and self.url is None:
            raise CatalogueError(f"catalogue entry {self.name!r}: neither bundled nor downloadable (url is null)")

    @property
    def card_path(self) -> Path:
        return ZOO_DIR / self.card


_FIELDS = tuple(ModelEntry.__dataclass_fields__)


def _is_sha256(text: object) -> bool:
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower())


def load_catalogue(path: str | Path | None = None) -> list[ModelEntry]:
    """All entries of the catalogue (the packaged ``catalogue.json`` unless ``path`` is given)."""
    path = Path(path) if path is not None else CATALOGUE_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CatalogueError(f"cannot read model catalogue {path}: {error}") from error
    if not isinstance(data, list):
        raise CatalogueError(f"model catalogue {path} must be a JSON list of models")
    entries = [ModelEntry.from_dict(item) for item in data]
    names = [entry.name for entry in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CatalogueError(f"model catalogue {path} lists {', '.join(duplicates)} more than once")
    return entries


def known_names(catalogue: Sequence[ModelEntry]) -> str:
    return ", ".join(entry.name for entry in catalogue) or "none"


def find_entry(name: str, catalogue: Sequence[ModelEntry] | None = None) -> ModelEntry | None:
    """The entry called ``name`` (case-insensitive), or None."""
    catalogue = load_catalogue() if catalogue is None else catalogue
    wanted = name.strip().lower()
    return next((entry for entry in catalogue if entry.name.lower() == wanted), None)


def get_entry(name: str, catalogue: Sequence[ModelEntry] | None = None) -> ModelEntry:
    """The entry called ``name``; an unknown name raises with the list of known names."""
    catalogue = load_catalogue() if catalogue is None else catalogue
    entry = find_entry(name, catalogue)
    if entry is None:
        raise UnknownModelError(f"unknown model {name!r} (known: {known_names(catalogue)})")
    return entry


def bundled_path(entry: ModelEntry) -> Path:
    """Where a bundled entry's file lives inside the installed package."""
    return BUNDLED_MODELS_DIR / entry.file
