"""Exports either appear complete at their final path or not at all, and never replace files unasked."""
from __future__ import annotations

import pytest

from RefSAM3DLib.io.atomic import atomic_output, full_extension, remove_stale_temporaries
from RefSAM3DLib.io.errors import OutputExistsError


@pytest.mark.parametrize("name, extension", [("liver.nii.gz", ".nii.gz"), ("out.seg.nrrd", ".seg.nrrd"),
                                             ("seg.dcm", ".dcm"), ("preview.png", ".png"), ("README", "")])
def test_temporary_file_keeps_the_full_extension_in_the_same_folder(tmp_path, name, extension):
    assert full_extension(name) == extension
    target = tmp_path / name
    with atomic_output(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.endswith(extension) and temporary != target
        temporary.write_text("complete")
        assert not target.exists()
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "labels.nii.gz"
    with pytest.raises(RuntimeError, match="disk full"), atomic_output(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_file_when_overwriting(tmp_path):
    target = tmp_path / "labels.nii.gz"
    target.write_text("previous")
    with pytest.raises(KeyboardInterrupt), atomic_output(target, overwrite=True) as temporary:
        temporary.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.nii.gz"]


def test_existing_target_needs_overwrite(tmp_path):
    target = tmp_path / "out.seg.nrrd"
    target.write_text("keep me")
    with pytest.raises(OutputExistsError) as error, atomic_output(target):
        pytest.fail("the body must not run when the target exists")
    assert str(error.value) == f"{target} exists; pass --overwrite (overwrite=True) to replace it"
    assert isinstance(error.value, FileExistsError)
    with atomic_output(target, overwrite=True) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new"


def test_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="produced no file"), atomic_output(tmp_path / "x.json"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_folders_are_created(tmp_path):
    target = tmp_path / "results" / "case1" / "labels.json"
    with atomic_output(target) as temporary:
        temporary.write_text("{}")
    assert target.read_text() == "{}"


def test_only_the_named_outputs_stale_temporaries_are_removed(tmp_path):
    """A killed run's leftovers go; another writer's temporaries and the user's own files stay."""
    mine = [tmp_path / ".a.tmp-0123456789ab.nii.gz", tmp_path / ".ct.tmp-abcdefabcdef.v2.json"]
    others = [tmp_path / ".b.tmp-0123456789ab.nii.gz", tmp_path / ".a.hidden", tmp_path / "a.nii.gz"]
    for path in mine + others:
        path.write_text("x")
    removed = remove_stale_temporaries(tmp_path, {"a.nii.gz", "ct.v2.json"})
    assert sorted(removed) == sorted(mine)
    assert all(path.exists() for path in others)


def test_an_output_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path):
    from RefSAM3DLib.io.errors import OutputWriteError

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    with pytest.raises(OutputWriteError) as error, atomic_output(blocker / "x.json") as temporary:
        temporary.write_text("{}")
    assert "is a file, not a folder" in str(error.value) and "\n" not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]
