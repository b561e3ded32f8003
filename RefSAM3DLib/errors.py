"""The one base class of every error a RefSAM3D user is meant to read.

The CLI and the Slicer module catch ``RefSAM3DError`` (and only it) and show its text as the whole
message; anything else escaping is a bug and is shown as one, with its traceback. Subclasses also
derive from the built-in error a caller would naturally catch (ValueError, FileExistsError, ...), so
code that does not know RefSAM3D still handles them.
"""
from __future__ import annotations


class RefSAM3DError(Exception):
    """A problem the user can act on; ``str(error)`` is one line: what is wrong with what, and what to do."""


class Cancelled(Exception):
    """The caller's cancel flag was set; nothing was returned or written. Not an error: every layer that can be
    cancelled (the slice encoder, the engine, the server) raises it, so it lives at the bottom."""


__all__ = ["Cancelled", "RefSAM3DError"]
