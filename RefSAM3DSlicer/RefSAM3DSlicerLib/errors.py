"""The one error type the module raises for bad input, so the Widget can show its message as-is."""


class InputError(ValueError):
    """Something the user can fix (no volume selected, a transform to harden, ...); the text is one line."""
