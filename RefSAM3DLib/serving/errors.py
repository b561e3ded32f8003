"""What goes wrong between a client and a RefSAM3D server, as one-line errors each side can show as they are.

Client side: ``ServerError`` (the server refused or failed a request; its text says what to do),
``ServerUnavailable`` (it cannot be reached or the connection broke) and ``SessionGone`` (the server no longer
holds the session: the client uploads the volume again). Server side: ``Problem`` is an HTTP status, a stable
machine-readable code and the sentence the user reads; the app turns it into the JSON error body.
"""
from __future__ import annotations

from ..errors import RefSAM3DError


class ServerError(RefSAM3DError, RuntimeError):
    """A request the server refused or could not answer; ``status``/``code`` as the server sent them."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ServerUnavailable(ServerError, ConnectionError):
    """The server cannot be reached, or the connection broke before its answer arrived."""


class SessionGone(ServerError):
    """The server does not hold the session (expired, evicted, or the server restarted)."""


class Problem(Exception):
    """Server side: answer the request with HTTP ``status`` and ``{"code": code, "detail": detail}``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = " ".join(str(detail).split())


__all__ = ["Problem", "ServerError", "ServerUnavailable", "SessionGone"]
