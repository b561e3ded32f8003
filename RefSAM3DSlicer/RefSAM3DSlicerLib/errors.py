"""The one error type the module raises for bad input, so the Widget can show its message as-is."""
from RefSAM3DLib.errors import RefSAM3DError


class InputError(RefSAM3DError, ValueError):
    """Something the user can fix (no volume selected, a transform to harden, ...); the text is one line."""
