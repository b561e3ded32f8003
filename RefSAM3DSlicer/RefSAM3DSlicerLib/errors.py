"""The one error type the module raises for bad input, so the Widget can show its message as-is.

It is a ``RefSAM3DError`` like every error the backend means the user to read. The backend ships inside the
extension, next to this module (CMakeLists.txt copies it), so it is imported directly: a missing backend is reported
as the missing package it is.
"""
from RefSAM3DLib.errors import RefSAM3DError


class InputError(RefSAM3DError, ValueError):
    """Something the user can fix (no volume selected, a transform to harden, ...); the text is one line."""
