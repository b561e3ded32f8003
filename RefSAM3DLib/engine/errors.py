"""Errors the engine raises on purpose, each with a message a user can act on."""
from ..errors import RefSAM3DError


class Cancelled(Exception):
    """The caller's cancel flag was set; nothing was returned or written."""


class PromptError(RefSAM3DError, ValueError):
    """A prompt that cannot be used (empty text, a point outside the volume, ...)."""
