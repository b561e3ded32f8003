"""Is the backend's Python stack present in this Python, and if not, install it (in Slicer, after asking).

Checking reads package metadata only (no subprocess, no import of torch), so the panel opens fast. Installing
is Slicer-only and runs on the main thread because pip_install creates Qt objects. torch is installed through
the PyTorch extension when available, since it picks the CUDA build matching the computer; everything else
goes through ``slicer.util.pip_install`` (the API every Slicer version since 4.11 has).
"""
from __future__ import annotations

import importlib.metadata
import logging
import re
from pathlib import Path

from .errors import InputError

log = logging.getLogger(__name__)

REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def read_requirements(path: str | Path = REQUIREMENTS_FILE) -> list[str]:
    """Requirement lines of a requirements file, without comments and blank lines."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"cannot read a package name from requirement {requirement!r}")
    return match.group(1)


def is_satisfied(requirement: str) -> bool:
    """Installed in a version the requirement accepts (name-only check when 'packaging' is unavailable)."""
    try:
        installed = importlib.metadata.version(requirement_name(requirement))
    except importlib.metadata.PackageNotFoundError:
        return False
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return True
    return Requirement(requirement).specifier.contains(installed, prereleases=True)


def missing_requirements(requirements: list[str] | None = None) -> list[str]:
    """The requirement lines that are not installed or installed in an unsuitable version."""
    requirements = read_requirements() if requirements is None else requirements
    return [r for r in requirements if not is_satisfied(r)]


def describe_missing(missing: list[str]) -> str:
    if not missing:
        return "All RefSAM3D dependencies are installed."
    return f"RefSAM3D needs {len(missing)} Python package(s) that are missing or too old: {', '.join(missing)}."


def install_requirements(missing: list[str], ask: bool = True) -> bool:
    """Install ``missing`` into Slicer's Python; False when the user declined. Slicer app only."""
    import slicer

    if not missing:
        return True
    if ask and not slicer.util.confirmOkCancelDisplay(
            describe_missing(missing) + "\n\nInstall them now? This downloads several GB (PyTorch) and can take "
            "minutes; Slicer may ask to restart afterwards.", windowTitle="RefSAM3D dependencies"):
        return False
    torch_lines = [r for r in missing if requirement_name(r).lower() == "torch"]
    others = [r for r in missing if r not in torch_lines]
    if torch_lines:
        _install_torch(torch_lines[0])
    if others:
        slicer.util.pip_install(others)
    still_missing = missing_requirements(missing)
    if still_missing:
        raise InputError(f"installation finished but these are still missing: {', '.join(still_missing)}; "
                         f"see the Python console for pip's messages")
    return True


def _install_torch(requirement: str) -> None:
    """Prefer the PyTorch extension (right CUDA build); plain pip otherwise."""
    import slicer

    specifier = requirement[len(requirement_name(requirement)):].strip() or None
    try:
        import PyTorchUtils  # the "PyTorch" extension from the Extensions Manager
    except ImportError:
        log.info("PyTorch extension not installed; installing %s from PyPI", requirement)
        slicer.util.pip_install([requirement])
        return
    torch_module = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                                 torchVersionRequirement=specifier)
    if torch_module is None:
        raise InputError("PyTorch was not installed; install it from the PyTorch module and try again")
