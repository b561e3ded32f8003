"""What happens when Slicer loads the module: the helper package imports cleanly, and the error type the panel shows
is a user error of the backend (a broken class layout would stop the module from loading at all)."""
import importlib.util
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "RefSAM3DSlicer" / "RefSAM3DSlicerLib"


def load_fresh(path: Path, name: str):
    """Execute one source file as a new module, the way a first import would."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_input_error_is_a_backend_user_error_and_a_value_error():
    from RefSAM3DSlicerLib.errors import InputError

    from RefSAM3DLib.errors import RefSAM3DError

    assert issubclass(InputError, RefSAM3DError) and issubclass(InputError, ValueError)


def test_a_missing_backend_is_reported_as_missing_not_as_a_class_layout_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "RefSAM3DLib.errors", None)  # what a first import sees without the backend
    with pytest.raises(ImportError, match="RefSAM3DLib.errors"):
        load_fresh(LIB / "errors.py", "errors_without_backend")


def test_slicer_older_than_5_10_is_refused_in_one_line_newer_is_accepted():
    from RefSAM3DSlicerLib.supported_slicer import MINIMUM_SLICER, unsupported_reason

    assert MINIMUM_SLICER == (5, 10)
    for slicer_version, python_version in (((5, 8), (3, 9)), ((5, 6), (3, 9)), (None, (3, 9))):
        reason = unsupported_reason(slicer_version, python_version)
        assert reason is not None and "\n" not in reason
        assert "needs 3D Slicer 5.10 or newer" in reason and "Python 3.9" in reason
    assert "Slicer 5.8 runs Python 3.9" in unsupported_reason((5, 8), (3, 9))
    assert unsupported_reason((5, 8), (3, 12)) is not None  # a custom 5.8 build: not what the module is written for
    for slicer_version in ((5, 10), (5, 12), (6, 0), None):
        assert unsupported_reason(slicer_version, (3, 12)) is None


def test_the_helper_package_refuses_to_load_on_python_3_9_before_importing_anything_else(monkeypatch):
    """What Slicer 5.8 sees when it loads the module: the package's first statement refuses, with the one line."""
    name = "RefSAM3DSlicerLib_on_slicer_5_8"
    spec = importlib.util.spec_from_file_location(name, LIB / "__init__.py", submodule_search_locations=[str(LIB)])
    package = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, package)
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    try:
        with pytest.raises(ImportError, match=r"^RefSAM3D needs 3D Slicer 5\.10 or newer .* runs Python 3\.9\. "
                                              r"Install Slicer 5\.10 or newer to use RefSAM3D\.$"):
            spec.loader.exec_module(package)
        loaded = {module for module in sys.modules if module.startswith(name + ".")}
        assert loaded == {name + ".supported_slicer"}, "only the version check may run on an old Slicer"
    finally:
        for module in [m for m in sys.modules if m.startswith(name + ".")]:
            del sys.modules[module]


def test_files_an_old_slicer_reads_before_refusing_parse_as_its_python():
    """Python 3.9 must be able to compile the module file and the check, or it fails before it can refuse."""
    import ast

    module_dir = LIB.parent
    for path, version in ((LIB / "supported_slicer.py", (3, 6)), (LIB / "__init__.py", (3, 6)),
                          (module_dir / "RefSAM3DSlicer.py", (3, 9))):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=version)


def test_extension_module_and_readme_state_the_same_minimum_slicer():
    import re

    from RefSAM3DSlicerLib.supported_slicer import MINIMUM_SLICER

    repo = LIB.parents[1]
    minimum = ".".join(str(part) for part in MINIMUM_SLICER)
    cmake = (repo / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(rf'set\(REFSAM3D_MINIMUM_SLICER_VERSION "{re.escape(minimum)}"\)', cmake)
    assert "if(Slicer_VERSION VERSION_LESS REFSAM3D_MINIMUM_SLICER_VERSION)" in cmake
    assert f"needs Slicer {minimum} or newer" in re.search(r'set\(EXTENSION_DESCRIPTION "(.*)"\)', cmake).group(1)
    assert f"**3D Slicer {minimum} or newer**" in (LIB.parent / "README.md").read_text(encoding="utf-8")
    assert f"Needs Slicer {minimum} or newer" in (LIB.parent / "RefSAM3DSlicer.py").read_text(encoding="utf-8")
