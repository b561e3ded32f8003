"""Write-then-rename, so an interrupted or failed export never leaves a half-written file at the final path.

The temporary file lives in the target folder (``os.replace`` is only atomic within one file system) and keeps
the target's full extension (``.nii.gz``, ``.seg.nrrd``, ``.dcm``) because nibabel, pynrrd and others choose
compression and format from the file name. A process killed mid-write can leave such a temporary behind;
``remove_stale_temporaries`` clears them (they are recognisable by name) before a batch resumes.
Write failures (permission, disk full) become one ``OutputWriteError`` line, and nothing is left behind.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputExistsError, OutputWriteError

_TEMPORARY = re.compile(r"^\.(.+)\.tmp-[0-9a-f]{12}(\..*)?$")  # .<stem>.tmp-<hex><extension>


def full_extension(name: str) -> str:
    """Everything from the first dot of a file name (not counting a leading one): 'ct.nii.gz' -> '.nii.gz'."""
    stripped = name.lstrip(".")
    return "." + stripped.split(".", 1)[1] if "." in stripped else ""


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Fail early (before any work) when a result would silently replace a file or cannot be written at all."""
    path = Path(path)
    if path.is_dir():
        raise OutputWriteError(path, "it is a folder; give a file name for the output")
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    _probe_folder(path)
    return path


def _probe_folder(path: Path) -> None:
    """Create and delete a file where ``path`` will be written (in its nearest existing folder)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputWriteError(path, f"{folder} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".refsam3d-probe-"):
            pass
    except OSError as error:
        raise OutputWriteError(path, _reason(error)) from None


def _reason(error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "disk full"
    return error.strerror or type(error).__name__


def remove_stale_temporaries(folder: str | os.PathLike, targets: set[str]) -> list[Path]:
    """Delete temporaries an interrupted ``atomic_output`` left in ``folder`` for the file names in ``targets``.

    Only those names: another process (a second batch rank) may be writing its own files there right now.
    """
    removed = []
    for entry in Path(folder).iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and entry.is_file() and match.group(1) + (match.group(2) or "") in targets:
            entry.unlink()
            removed.append(entry)
    return removed


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path to write to; move it onto ``path`` only if the block succeeds."""
    path = check_writable(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputWriteError(path, _reason(error)) from None
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
    except (OutputExistsError, OutputWriteError):  # already one line (e.g. from a nested atomic_output)
        raise
    except OSError as error:
        raise OutputWriteError(path, _reason(error)) from None
    finally:
        if temporary.exists():
            temporary.unlink()
