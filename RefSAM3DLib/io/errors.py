"""One-line, actionable errors for reading volumes and writing results.

They subclass the built-in error a caller would naturally catch (ValueError, FileExistsError), so code that
does not know about RefSAM3D still handles them, while the CLI can print ``str(error)`` as the whole message.
"""
from __future__ import annotations


class VolumeReadError(ValueError):
    """A volume could not be read: "<path>: <what is wrong>; <what to do>"."""

    def __init__(self, path, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}; {remedy}")


class OutputExistsError(FileExistsError):
    """Refusing to replace an existing result unless the user asked for it."""

    def __init__(self, path) -> None:
        super().__init__(f"{path} exists; pass --overwrite (overwrite=True) to replace it")

    def __str__(self) -> str:  # FileExistsError's default str() adds "[Errno None]" noise
        return self.args[0]


class ExportError(ValueError):
    """Segments cannot be written in the requested format: "<path>: <what is wrong>; <what to do>"."""

    def __init__(self, path, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}; {remedy}")
