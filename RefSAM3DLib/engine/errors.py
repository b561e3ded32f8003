"""Errors the engine raises on purpose, each with a message a user can act on."""
from ..errors import Cancelled, RefSAM3DError  # noqa: F401  (Cancelled: the engine's callers import it from here)


class PromptError(RefSAM3DError, ValueError):
    """A prompt that cannot be used (empty text, a point outside the volume, ...)."""
