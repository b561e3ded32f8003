"""Every error a user is meant to read derives from RefSAM3DError (and keeps its built-in base); the command
line shows exactly those as one line with exit code 2 and lets anything else surface as the bug it is."""
from __future__ import annotations

import argparse

import pytest

from RefSAM3DLib.cases.errors import DatasetError
from RefSAM3DLib.commands import program
from RefSAM3DLib.commands.arguments import UsageError
from RefSAM3DLib.engine.errors import Cancelled, PromptError
from RefSAM3DLib.errors import RefSAM3DError
from RefSAM3DLib.io.errors import ExportError, OutputExistsError, OutputWriteError, VolumeReadError
from RefSAM3DLib.modeling.sam_weights import CheckpointError
from RefSAM3DLib.training.errors import DatasetError as TrainingDatasetError
from RefSAM3DLib.zoo.errors import ChecksumMismatchError, ModelUnavailableError, UnknownModelError, ZooError

USER_ERRORS = {VolumeReadError: ValueError, ExportError: ValueError, OutputExistsError: FileExistsError,
               OutputWriteError: OSError, PromptError: ValueError, UsageError: ValueError, DatasetError: ValueError,
               CheckpointError: ValueError, ZooError: RuntimeError, UnknownModelError: LookupError,
               ModelUnavailableError: RuntimeError, ChecksumMismatchError: RuntimeError}


@pytest.mark.parametrize("error, builtin", list(USER_ERRORS.items()), ids=lambda e: getattr(e, "__name__", ""))
def test_user_errors_share_one_base_and_keep_their_builtin(error, builtin):
    assert issubclass(error, RefSAM3DError) and issubclass(error, builtin)


def test_training_and_cases_raise_the_same_dataset_error():
    assert TrainingDatasetError is DatasetError


def test_slicer_input_error_is_a_refsam3d_error():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "RefSAM3DSlicer"))
    from RefSAM3DSlicerLib.errors import InputError

    assert issubclass(InputError, RefSAM3DError) and issubclass(InputError, ValueError)


def test_cancel_is_not_a_user_error():
    assert not issubclass(Cancelled, RefSAM3DError)


def _program(raise_this: BaseException) -> argparse.ArgumentParser:
    def add_parser(sub) -> None:
        parser = sub.add_parser("probe")
        parser.set_defaults(func=lambda args: (_ for _ in ()).throw(raise_this))

    return program.new_parser("probe", [add_parser])


def test_cli_prints_a_refsam3d_error_as_one_line(capsys):
    assert program.run(_program(VolumeReadError("scan.nii.gz", "truncated", "copy it again")), ["probe"]) == 2
    assert capsys.readouterr().err == "refsam3d probe: error: scan.nii.gz: truncated; copy it again\n"


def test_cli_reports_cancel_with_code_130(capsys):
    assert program.run(_program(Cancelled("cancelled by the user")), ["probe"]) == 130
    assert "cancelled by the user" in capsys.readouterr().err


def test_cli_lets_other_errors_surface_as_bugs():
    with pytest.raises(KeyError):
        program.run(_program(KeyError("")), ["probe"])


def test_other_libraries_warnings_do_not_add_lines(capsys):
    import warnings

    class _LibraryWarning(UserWarning):
        pass

    def add_parser(sub) -> None:
        parser = sub.add_parser("probe")
        parser.set_defaults(func=lambda args: warnings.warn("noisy library detail", _LibraryWarning, stacklevel=1))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert program.run(program.new_parser("probe", [add_parser]), ["probe"]) == 0
    assert capsys.readouterr().err == ""
