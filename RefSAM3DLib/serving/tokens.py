"""The server's shared secret: read from a file, sent as ``Authorization: Bearer <token>``, compared in constant time.

The token never appears in a log line, an error message, a URL or a Slicer scene; only its file name does.
"""
from __future__ import annotations

import hmac
import os
import stat
from pathlib import Path

from ..errors import RefSAM3DError

MIN_TOKEN_CHARACTERS = 16
MAX_TOKEN_CHARACTERS = 4096


class TokenError(RefSAM3DError, ValueError):
    """The token file cannot be used; the message names the file, never its content."""


def check_token(token: str, where: str = "the token") -> str:
    """A usable token: printable ASCII without spaces, 16..4096 characters (raises TokenError naming ``where``)."""
    if not token:
        raise TokenError(f"{where} is empty; put a long random secret in it, e.g. "
                         "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    if len(token) > MAX_TOKEN_CHARACTERS or not all(33 <= ord(c) < 127 for c in token):
        raise TokenError(f"{where} must be one line of printable ASCII without spaces (at most "
                         f"{MAX_TOKEN_CHARACTERS} characters)")
    if len(token) < MIN_TOKEN_CHARACTERS:
        raise TokenError(f"{where} is shorter than {MIN_TOKEN_CHARACTERS} characters; use a long random secret, e.g. "
                         "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return token


def read_token_file(path: str | os.PathLike) -> str:
    """The token in ``path`` (its first line, surrounding whitespace removed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenError(f"token file {path} does not exist; create it with a long random secret") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TokenError(f"token file {path} cannot be read ({type(error).__name__}); check its permissions") from None
    lines = text.strip().splitlines()
    return check_token(lines[0].strip() if lines else "", f"token file {path}")


def readable_by_others(path: str | os.PathLike) -> bool:
    """True when group or others may read the file (POSIX); the server warns, it does not refuse."""
    try:
        return os.name == "posix" and bool(Path(path).stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def bearer(token: str) -> str:
    return f"Bearer {token}"


def authorised(header_value: bytes | None, expected: bytes) -> bool:
    """Constant-time comparison of an Authorization header with ``b"Bearer " + token``."""
    return hmac.compare_digest(header_value or b"", expected)
