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
