"""The oldest 3D Slicer RefSAM3D runs in, checked first when the module loads.

RefSAM3D and the packages it installs need Python 3.10 or newer. Slicer 5.6 and 5.8 embed Python 3.9, where they
would fail only later, in the middle of a prompt (e.g. a text encoder package whose code needs 3.10); Slicer 5.10
and newer embed Python 3.12. On an older Slicer the module therefore refuses to load, with one line that says what
to install. This file avoids syntax newer than Python 3.6, so an old Slicer can still read it and say so.
"""
import sys

MINIMUM_SLICER = (5, 10)
MINIMUM_PYTHON = (3, 10)


class UnsupportedSlicer(ImportError):
    """The module is loading in a Slicer too old for it; the text is the one line to show."""


def running_slicer_version():
    """(major, minor) of the Slicer application running this code; None outside it (slicer-core, plain Python)."""
    try:
        import slicer
    except ImportError:
        return None
    app = getattr(slicer, "app", None)
    major, minor = getattr(app, "majorVersion", None), getattr(app, "minorVersion", None)
    if major is None or minor is None:
        return None
    return int(major), int(minor)


def unsupported_reason(slicer_version=None, python_version=None):
    """Why this Slicer cannot run RefSAM3D, in one line; None when it can."""
    python_version = tuple(python_version or sys.version_info[:2])
    too_old_slicer = slicer_version is not None and tuple(slicer_version) < MINIMUM_SLICER
    if not too_old_slicer and python_version >= MINIMUM_PYTHON:
        return None
    running = f"Slicer {slicer_version[0]}.{slicer_version[1]}" if slicer_version else "this Slicer"
    minimum = f"{MINIMUM_SLICER[0]}.{MINIMUM_SLICER[1]}"
    return (f"RefSAM3D needs 3D Slicer {minimum} or newer (Python {MINIMUM_PYTHON[0]}.{MINIMUM_PYTHON[1]}+); "
            f"{running} runs Python {python_version[0]}.{python_version[1]}. "
            f"Install Slicer {minimum} or newer to use RefSAM3D.")


def refuse_unsupported_slicer(slicer_version=None, python_version=None):
    """Raise ``UnsupportedSlicer`` (an ImportError, so Slicer reports the module as not loaded) on an old Slicer."""
    reason = unsupported_reason(slicer_version or running_slicer_version(), python_version)
    if reason is not None:
        raise UnsupportedSlicer(reason)
