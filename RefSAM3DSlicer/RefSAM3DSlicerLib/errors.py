"""The one error type the module raises for bad input, so the Widget can show its message as-is."""
try:
    from RefSAM3DLib.errors import RefSAM3DError
except ImportError:  # the library is installed on first use; before that nothing can raise its errors
    RefSAM3DError = Exception


class InputError(RefSAM3DError, ValueError):
    """Something the user can fix (no volume selected, a transform to harden, ...); the text is one line."""
