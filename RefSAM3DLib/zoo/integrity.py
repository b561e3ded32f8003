"""SHA-256 checks of model files, remembered so a large cached file is hashed only once.

Hashing 375 MB takes about a second; doing it on every start of the tool would be felt. After a
successful check a small ``<file>.sha256ok`` marker records the digest with the file's size and
modification time, so any later change to the file invalidates the marker and forces a re-check.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ChecksumMismatchError

CHUNK_BYTES = 1 << 20
MARKER_SUFFIX = ".sha256ok"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def marker_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + MARKER_SUFFIX)


def _fingerprint(path: Path, sha256: str) -> dict:
    stat = path.stat()
    return {"sha256": sha256.lower(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _marker_matches(path: Path, sha256: str) -> bool:
    try:
        return json.loads(marker_path(path).read_text(encoding="utf-8")) == _fingerprint(path, sha256)
    except (OSError, ValueError):
        return False


def remember_verified(path: str | Path, sha256: str) -> None:
    """Write the marker; a read-only folder only costs a re-check next time."""
    path = Path(path)
    try:
        marker_path(path).write_text(json.dumps(_fingerprint(path, sha256)), encoding="utf-8")
    except OSError:
        pass


def verify_once(path: str | Path, sha256: str) -> None:
    """Raise ``ChecksumMismatchError`` if ``path`` does not hash to ``sha256``; skip files already verified."""
    path = Path(path)
    if _marker_matches(path, sha256):
        return
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise ChecksumMismatchError(f"{path} has sha256 {actual}, expected {sha256.lower()}: the file is corrupted or "
                                    f"a different version; delete it and download it again")
    remember_verified(path, sha256)
