"""One-line, actionable errors for reading volumes and writing results.

They subclass the built-in error a caller would naturally catch (ValueError, FileExistsError), so code that
does not know about RefSAM3D still handles them, while the CLI can print ``str(error)`` as the whole message.
"""
from __future__ import annotations

from ..errors import RefSAM3DError


class VolumeReadError(RefSAM3DError, ValueError):
    """A volume could not be read: "<path>: <what is wrong>; <what to do>"."""

    def __init__(self, path, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}; {remedy}")


class OutputExistsError(RefSAM3DError, FileExistsError):
    """Refusing to replace an existing result unless the user asked for it."""

    def __init__(self, path) -> None:
        super().__init__(f"{path} exists; pass --overwrite (overwrite=True) to replace it")

    def __str__(self) -> str:  # FileExistsError's default str() adds "[Errno None]" noise
        return self.args[0]


class ExportError(RefSAM3DError, ValueError):
    """Segments cannot be written in the requested format: "<path>: <what is wrong>; <what to do>"."""

    def __init__(self, path, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}; {remedy}")


class OutputWriteError(RefSAM3DError, OSError):
    """The output cannot be written (no permission, not a folder, disk full); nothing was left behind."""

    def __init__(self, path, reason: str) -> None:
        super().__init__(f"{path}: cannot write the output ({reason}); choose a folder you can write to that has "
                         "free space")

    def __str__(self) -> str:
        return self.args[0]
