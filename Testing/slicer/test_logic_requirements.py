"""Resources/requirements.txt lists exactly what inference and export import, in ranges that accept the packages
Slicer bundles; the extension depends on the PyTorch extension; the installer pins Slicer's own packages, streams
pip's output from a separate process and tells when Slicer must restart."""
import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "RefSAM3DSlicer"
ENTRY_POINTS = [REPO / "RefSAM3DLib" / "engine" / "predictor.py", REPO / "RefSAM3DLib" / "io" / "exporters.py",
                *sorted((MODULE / "RefSAM3DSlicerLib").glob("*.py"))]
PROVIDED_BY_SLICER = {"slicer", "vtk", "qt", "ctk", "PyTorchUtils", "packaging",  # packaging: optional, guarded
                      "SimpleITK"}  # bundled with Slicer (the anatomy prior registers with it)


def _local_file(module: str) -> Path | None:
    if module.split(".")[0] == "RefSAM3DSlicerLib":
        base = MODULE.joinpath(*module.split("."))
    else:
        base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reachable_third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party modules imported (anywhere, also lazily) by code reachable from the entry points."""
    found: dict[str, set[str]] = {}
    seen: set[Path] = set()
    stack = list(ENTRY_POINTS)
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        relative = path.relative_to(MODULE if "RefSAM3DSlicerLib" in path.parts else REPO)
        package = list(relative.parent.parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                modules = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in ("RefSAM3DLib", "RefSAM3DSlicerLib"):
                    local = _local_file(module)
                    if local is not None:
                        stack.append(local)
                elif top and top not in sys.stdlib_module_names and top not in PROVIDED_BY_SLICER:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def requirement_lines():
    from RefSAM3DSlicerLib.dependencies import read_requirements

    return [Requirement(line) for line in read_requirements()]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_are_exactly_what_inference_and_export_import():
    distributions = importlib.metadata.packages_distributions()
    needed = set()
    for module, files in reachable_third_party_imports().items():
        assert module in distributions, f"{module} (imported by {sorted(files)}) is not installed here"
        needed |= {canonical(d) for d in distributions[module]}
    listed = {canonical(r.name) for r in requirement_lines()}
    assert listed - needed == set(), f"listed but never imported by inference/export: {listed - needed}"
    assert needed - listed == set(), f"imported by inference/export but not listed: {needed - listed}"
    for unused in ("monai", "matplotlib", "pyyaml", "tensorboard", "pynrrd"):
        assert unused not in listed


@pytest.mark.parametrize("name,slicer_version", [("pydicom", "2.4.4"), ("numpy", "1.26.4"), ("numpy", "2.2.6"),
                                                 ("scipy", "1.13.1")])
def test_ranges_accept_the_packages_slicer_bundles(name, slicer_version):
    requirement = {canonical(r.name): r for r in requirement_lines()}[name]
    assert requirement.specifier.contains(slicer_version), f"{requirement} would replace Slicer's {name} {slicer_version}"


def test_installer_pins_what_is_installed_and_detects_restarts():
    from RefSAM3DSlicerLib.dependencies import protected_constraints, restart_required

    pins = protected_constraints()
    assert f"numpy=={importlib.metadata.version('numpy')}" in pins
    assert all("==" in pin for pin in pins)
    before = {"numpy": "1.26.4", "highdicom": None, "open_clip_torch": "2.24.0", "tqdm": "4.66.0"}
    after = {"numpy": "2.2.6", "highdicom": "0.22.0", "open_clip_torch": "3.0.0", "tqdm": "4.66.0"}
    assert restart_required(before, after, imported={"numpy", "tqdm"}) == ["numpy"]
    assert restart_required(before, after, imported={"open_clip"}) == ["open_clip_torch"]
    assert restart_required(before, after, imported=set()) == []


def test_pip_runs_in_its_own_process_and_streams_its_output():
    from RefSAM3DSlicerLib.dependencies import PipInstall

    install = PipInstall(["numpy"], command=[sys.executable, "-c", "print('Collecting x'); print('Successfully')"])
    install.start()
    assert install.wait(60) == 0 and install.done
    assert install.poll() == ["Collecting x", "Successfully"] and install.poll() == []
    missing, restart = install.result()
    assert missing == [] and restart == []

    default = PipInstall(["highdicom>=0.22"])
    try:
        assert default.command[1:4] == ["-m", "pip", "install"] and default.command[-1] == "highdicom>=0.22"
        constraints = Path(default.command[default.command.index("-c") + 1]).read_text()
        assert f"numpy=={importlib.metadata.version('numpy')}" in constraints
    finally:
        default.close()


def test_extension_depends_on_the_pytorch_extension():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r'set\(EXTENSION_DEPENDS "?PyTorch"?\)', text)


def test_dicom_seg_support_is_opt_in_where_slicer_bundles_pydicom_2():
    from RefSAM3DSlicerLib.dependencies import DICOMSEG_REQUIREMENTS, dicomseg_missing, protected_constraints

    slicer_58 = {"pydicom": "2.4.4", "highdicom": "0.22.0"}.get  # what the default install gives on such a Slicer
    assert dicomseg_missing(slicer_58) == list(DICOMSEG_REQUIREMENTS)
    assert dicomseg_missing({"pydicom": "3.0.2", "highdicom": "0.28.2"}.get) == []
    # the default install keeps Slicer's pydicom; only the explicit DICOM-SEG install may upgrade it
    assert any(pin.startswith("pydicom==") for pin in protected_constraints())
    assert not any(pin.startswith("pydicom==") for pin in protected_constraints(allow_upgrade=("pydicom",)))
    lines = {canonical(r.name): r for r in requirement_lines()}
    assert lines["pydicom"].specifier.contains("2.4.4") and lines["highdicom"].specifier.contains("0.22.0")


def test_torch_is_installed_with_the_pytorch_extensions_choice_in_the_background(monkeypatch):
    """The PyTorch extension is a Slicer extension (not importable here); its logic's argument builder is the
    interface used, so the same light-the-torch command runs, only in a separate, polled process."""
    import types

    from RefSAM3DSlicerLib.dependencies import torch_install_command

    monkeypatch.delitem(sys.modules, "PyTorchUtils", raising=False)
    assert torch_install_command("torch>=2.4,<3", python="PythonSlicer") == [  # no extension: light-the-torch's choice
        "PythonSlicer", "-m", "light_the_torch", "install", "torch>=2.4,<3", "torchvision"]

    class PyTorchUtilsLogic:  # the extension's signature: (backend, torch requirement, torchvision requirement)
        @staticmethod
        def _getPipInstallArguments(forceComputationBackend=None, torchVersionRequirement=None,
                                    torchvisionVersionRequirement=None):
            return ["install", "torch" + (torchVersionRequirement or ""), "torchvision"]

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=PyTorchUtilsLogic))
    assert torch_install_command("torch>=2.4,<3", python="PythonSlicer") == [
        "PythonSlicer", "-m", "light_the_torch", "install", "torch>=2.4,<3", "torchvision"]


def test_every_install_runs_in_the_background_light_the_torch_first(monkeypatch):
    """Nothing the panel installs blocks Slicer: light-the-torch, then PyTorch through it, then pip, each a process."""
    from RefSAM3DSlicerLib.dependencies import LIGHT_THE_TORCH, install_plan

    monkeypatch.delitem(sys.modules, "PyTorchUtils", raising=False)
    missing = ["torch>=2.4,<3", "nibabel>=5.0", "highdicom>=0.22"]
    without_ltt = {"light-the-torch": None}.get
    plan = install_plan(missing, version_of=without_ltt, python="PythonSlicer")
    assert plan == [([LIGHT_THE_TORCH], None),
                    (["torch>=2.4,<3"], ["PythonSlicer", "-m", "light_the_torch", "install", "torch>=2.4,<3",
                                         "torchvision"]),
                    (["nibabel>=5.0", "highdicom>=0.22"], None)]
    assert install_plan(missing, version_of={"light-the-torch": "0.8.0"}.get, python="P")[0][0] == ["torch>=2.4,<3"]
    assert install_plan(["nibabel>=5.0"], python="P") == [(["nibabel>=5.0"], None)]
    assert install_plan([]) == []


def test_pip_opens_no_console_window_on_windows():
    """Slicer's launchConsoleProcess hides the console of the processes it starts on Windows; so does PipInstall."""
    from RefSAM3DSlicerLib.dependencies import CREATE_NO_WINDOW, hidden_console_options

    assert hidden_console_options("nt") == {"creationflags": CREATE_NO_WINDOW} and CREATE_NO_WINDOW == 0x08000000
    assert hidden_console_options("posix") == {}
