"""Where prompts are computed -- this computer's model or a RefSAM3D server -- and the one interface both offer.

The Logic never asks which: it builds a ``ComputeTarget`` from the settings, the worker thread hands each job to the
engine for that target (``LocalEngine``: the model in Slicer's Python; ``ServerEngine``: `refsam3d serve` over
HTTP), and both answer with results that carry masks on the volume's grid and the handles a click refinement needs.
The server token lives in ``ComputeTarget`` only as a hidden field: never in a repr, a log line or the scene.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .errors import InputError
from .settings import DEFAULT_MODEL


@dataclass(frozen=True)
class ComputeTarget:
    model: str = DEFAULT_MODEL  # local: a zoo name or checkpoint; a server uses its own model
    device: str = "auto"
    server_url: str | None = None  # None: this computer
    token: str = field(default="", repr=False)

    @property
    def remote(self) -> bool:
        return self.server_url is not None

    @classmethod
    def from_settings(cls, settings) -> ComputeTarget:
        """The target the settings ask for; InputError (one line) for a server set-up that cannot work."""
        if settings.compute != "server":
            return cls(settings.model, settings.device)
        from RefSAM3DLib.serving.client import normalise_url
        from RefSAM3DLib.serving.errors import ServerError
        from RefSAM3DLib.serving.tokens import TokenError, check_token

        if not settings.server_url.strip():
            raise InputError("enter the RefSAM3D server's address (e.g. http://gpu-server:8765) in Model > Compute on, "
                             "or compute on this computer")
        try:
            url = normalise_url(settings.server_url)
            token = check_token(settings.server_token.strip(), "the server token") if settings.server_token else ""
        except (ServerError, TokenError) as error:
            raise InputError(str(error)) from None
        return cls(settings.model, settings.device, url, token)


class ComputeEngine(Protocol):
    """What the worker thread asks of an engine; ``key`` is (target, volume fingerprint, modality)."""

    target: ComputeTarget
    sessions_opened: int  # volumes opened (local) or uploaded (server)

    def has_session(self, key: tuple) -> bool: ...

    def session(self, key: tuple): ...

    def session_token(self, key: tuple): ...

    def segment(self, key: tuple, volume, prompts: list, progress=None, cancel=None, **options) -> list: ...

    def preload(self, progress=None) -> None: ...

    def release(self) -> None: ...

    @property
    def description(self) -> str: ...
