"""Write-then-rename, so an interrupted or failed export never leaves a half-written file at the final path.

The temporary file lives in the target folder (``os.replace`` is only atomic within one file system) and keeps
the target's full extension (``.nii.gz``, ``.seg.nrrd``, ``.dcm``) because nibabel, pynrrd and others choose
compression and format from the file name.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputExistsError


def full_extension(name: str) -> str:
    """Everything from the first dot of a file name (not counting a leading one): 'ct.nii.gz' -> '.nii.gz'."""
    stripped = name.lstrip(".")
    return "." + stripped.split(".", 1)[1] if "." in stripped else ""


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Fail early (before any work) when a result would silently replace an existing file."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name for the output")
    return path


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path to write to; move it onto ``path`` only if the block succeeds."""
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    extension = full_extension(path.name)
    stem = path.name[: len(path.name) - len(extension)] if extension else path.name
    temporary = path.with_name(f".{stem}.tmp-{uuid.uuid4().hex[:12]}{extension}")
    try:
        yield temporary
        if not temporary.is_file():
            raise RuntimeError(f"{path}: the writer produced no file; nothing was written")
        if path.exists() and not overwrite:  # appeared while we were writing
            raise OutputExistsError(path)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
