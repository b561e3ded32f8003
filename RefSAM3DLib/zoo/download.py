"""Resumable, checksum-verified downloads with nothing but the standard library (and tqdm).

Model files are hundreds of megabytes and hospital networks drop connections, so bytes already
received are kept in ``<dest>.part`` and the next attempt asks only for the rest (HTTP ``Range``).
A server that ignores ``Range`` (answers 200) makes us start over rather than append a second copy.
The final file appears only after its SHA-256 matched, by an atomic rename, so a half-written or
corrupted file is never mistaken for a model. Offline, the error says exactly where to put the file.
"""
from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from tqdm import tqdm

from .errors import ChecksumMismatchError, ModelUnavailableError, UnverifiedDownloadWarning
from .integrity import remember_verified, sha256_of

OFFLINE_ENV = "REFSAM3D_OFFLINE"
USER_AGENT = "refsam3d-model-zoo"
CHUNK_BYTES = 1 << 20
RETRY_WAIT_S = 1.0  # pause before resuming after a dropped connection (tests set it to 0)
PART_SUFFIX = ".part"


class _StreamInterrupted(Exception):
    """The body stopped early; what was received is in the part file and can be resumed."""


class _ServerUnreachable(Exception):
    """No response at all (no network, DNS failure, refused connection, timeout)."""


def offline_mode() -> bool:
    """True when ``REFSAM3D_OFFLINE`` is set to 1/true/yes: no network access is attempted at all."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def part_path(dest: str | Path) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + PART_SUFFIX)


def manual_placement_hint(url: str | None, dest: Path) -> str:
    """The advice every unavailability message ends with."""
    source = f"download {url} on a machine with internet and place it" if url else f"place {dest.name}"
    return f"{source} at {dest} (or pass --model /path/to/file)"


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/200' -> (100, 200); 'bytes */200' -> (None, 200); '/*' totals -> None."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total and total != "*" else None)


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _fetch_into_part(url: str, part: Path, progress: bool, timeout_s: float) -> None:
    """Append the missing bytes to ``part`` (or rewrite it); raise ``_StreamInterrupted`` on a short body."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        # "Range not satisfiable": the part is complete already, or longer than the file (changed upstream).
        _, total = _content_range(error.headers.get("Content-Range"))
        error.close()
        if total == offset:
            return
        part.unlink()
        raise _StreamInterrupted("the partial file does not fit the server's file; starting again") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise _ServerUnreachable(str(getattr(error, "reason", error))) from error
    with response:
        if offset and response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _StreamInterrupted(f"the server resumed at byte {start}, not {offset}; starting again")
            mode = "ab"
        else:  # a full body: no part yet, or the server ignored Range, so start over
            offset, total, mode = 0, _content_length(response), "wb"
        received = offset
        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                                           desc=part.name[: -len(PART_SUFFIX)], disable=not progress) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (http.client.HTTPException, OSError) as error:  # network trouble, not local disk trouble
                    raise _StreamInterrupted(f"connection lost after {received} bytes ({error})") from error
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        raise _StreamInterrupted(f"connection closed after {received} of {total} bytes")


def _verify_part(part: Path, url: str, sha256: str | None, size_bytes: int | None) -> None:
    """Delete the part file and raise if it is not the expected file."""
    actual_size = part.stat().st_size
    if size_bytes is not None and actual_size != size_bytes:
        part.unlink()
        raise ChecksumMismatchError(f"download of {url} has {actual_size} bytes, expected {size_bytes}; "
                                    f"the partial file was deleted, try again")
    if sha256 is not None:
        actual = sha256_of(part)
        if actual != sha256.lower():
            part.unlink()
            raise ChecksumMismatchError(f"sha256 mismatch for {url}: expected {sha256.lower()}, got {actual}; "
                                        f"the partial file was deleted, try again")


def download(url: str, dest: str | Path, sha256: str | None = None, progress: bool = True, *,
             size_bytes: int | None = None, attempts: int = 3, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming it, verifying it, then renaming it into place.

    A dropped connection is resumed up to ``attempts`` times within this call; after that the part
    file is kept so that the next call continues where this one stopped.
    """
    dest = Path(dest)
    if offline_mode():
        raise ModelUnavailableError(f"{dest.name} is not available offline ({OFFLINE_ENV}=1 forbids downloads): "
                                    f"{manual_placement_hint(url, dest)}")
    if sha256 is None:
        warnings.warn(f"downloading {url} without a known sha256: the file cannot be verified",
                      UnverifiedDownloadWarning, stacklevel=2)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for attempt in range(1, max(1, attempts) + 1):
        try:
            _fetch_into_part(url, part, progress, timeout_s)
            break
        except _StreamInterrupted as interruption:
            if attempt >= attempts:
                kept = f"{part} is kept, run again to resume" if part.exists() else "nothing was kept"
                raise ModelUnavailableError(f"download of {url} interrupted ({interruption}); {kept}; or "
                                            f"{manual_placement_hint(url, dest)}") from None
            time.sleep(RETRY_WAIT_S * attempt)
        except urllib.error.HTTPError as error:
            raise ModelUnavailableError(f"cannot download {url}: the server answered HTTP {error.code} {error.reason}; "
                                        f"{manual_placement_hint(url, dest)}") from None
        except _ServerUnreachable as error:
            kept = f" (the partial download {part} is kept and will be resumed)" if part.exists() else ""
            raise ModelUnavailableError(f"cannot download {url} ({error}){kept}; offline? "
                                        f"{manual_placement_hint(url, dest)}") from None
    _verify_part(part, url, sha256, size_bytes)
    os.replace(part, dest)
    if sha256 is not None:
        remember_verified(dest, sha256)
    return dest
