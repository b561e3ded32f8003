"""Errors of the model zoo, each with a one-line message that says what to do next.

A user meets these at the command line or in a Slicer dialog, often on a machine without internet,
so every message names the file, where it is expected, and how to provide it by hand.
"""
from __future__ import annotations

from ..errors import RefSAM3DError


class ZooError(RefSAM3DError, RuntimeError):
    """Base class: anything that stops a model file from being found or trusted."""


class UnknownModelError(ZooError, LookupError):
    """The name is neither a file nor a catalogue entry."""


class ModelUnavailableError(ZooError):
    """The model is known but its file cannot be obtained here (offline, network failure, missing bundle)."""


class ChecksumMismatchError(ZooError):
    """A file's SHA-256 differs from the catalogue: a corrupted or substituted download."""


class CatalogueError(ZooError, ValueError):
    """The catalogue JSON is malformed."""


class UnverifiedDownloadWarning(UserWarning):
    """A file was downloaded without a known SHA-256, so its integrity could not be checked."""
