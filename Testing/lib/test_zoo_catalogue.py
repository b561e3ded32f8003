"""Catalogue, cache location and resolution order, without any network access."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from RefSAM3DLib.zoo import (
    CatalogueError,
    ChecksumMismatchError,
    ModelEntry,
    ModelUnavailableError,
    UnknownModelError,
    cache_dir,
    cached_path,
    get_entry,
    list_models,
    load_catalogue,
    model_path,
    resolve_model,
)
from RefSAM3DLib.zoo import catalogue as catalogue_module
from RefSAM3DLib.zoo.catalogue import DEFAULT_MODEL

DATA = b"pretend these are model weights" * 50
DATA_SHA = hashlib.sha256(DATA).hexdigest()
DATA_SIZE = len(DATA)
UNREACHABLE_URL = "http://127.0.0.1:9/never-contacted.bin"  # tests fail loudly if anything tries to download


@pytest.fixture(autouse=True)
def isolated_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("REFSAM3D_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REFSAM3D_OFFLINE", "1")
    monkeypatch.setattr(catalogue_module, "BUNDLED_MODELS_DIR", tmp_path / "bundled")


def make_entry(name="toy-model", file="toy.bin", bundled=False, url=UNREACHABLE_URL, sha256=DATA_SHA,
               size_bytes=DATA_SIZE):
    return ModelEntry(name=name, version="1", config="demo", file=file, url=url, sha256=sha256,
                      size_bytes=size_bytes, licence="Apache-2.0", card="cards/none.md", bundled=bundled,
                      description="test model")


def put(path: Path, data: bytes = DATA) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_packaged_catalogue_lists_the_real_models():
    entries = {e.name: e for e in load_catalogue()}
    assert set(entries) == {DEFAULT_MODEL, "sam-vit-b"}
    lite, sam = entries["refsam3d-lite"], entries["sam-vit-b"]
    assert DEFAULT_MODEL == "refsam3d-lite"  # the from-scratch demo model is retired from the package
    assert lite.bundled and lite.file == "refsam3d_lite.pt" and lite.config == "lite"
    assert lite.size_bytes <= 40e6 and lite.sha256 is not None  # the package stays small and verified
    assert not sam.bundled and sam.config == "vit_b" and sam.licence == "Apache-2.0"
    assert sam.url == "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth"
    for entry in entries.values():
        assert entry.card_path.is_file(), entry.card


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownModelError) as error:
        get_entry("sam-vit-z")
    assert str(error.value) == "unknown model 'sam-vit-z' (known: refsam3d-lite, sam-vit-b)"
    with pytest.raises(UnknownModelError) as error:
        resolve_model("no-such-model", catalogue=[make_entry()])
    assert str(error.value) == "unknown model 'no-such-model': not a file and not in the catalogue (known: toy-model)"


def test_malformed_catalogues_are_refused(tmp_path):
    good = {"name": "x", "version": "1", "config": "demo", "file": "x.pt", "url": None, "sha256": None,
            "size_bytes": None, "licence": "MIT", "card": "c.md", "bundled": True, "description": "d"}
    cases = {
        "lacks sha256": {k: v for k, v in good.items() if k != "sha256"},
        "64 hex": {**good, "sha256": "abc"},
        "bare file name": {**good, "file": "../x.pt"},
        "neither bundled nor downloadable": {**good, "bundled": False},
    }
    for expected, bad in cases.items():
        path = tmp_path / "catalogue.json"
        path.write_text(json.dumps([bad]))
        with pytest.raises(CatalogueError, match=expected):
            load_catalogue(path)
    path.write_text(json.dumps([good, good]))
    with pytest.raises(CatalogueError, match="more than once"):
        load_catalogue(path)
    path.write_text(json.dumps({"models": [good]}))
    with pytest.raises(CatalogueError, match="JSON list"):
        load_catalogue(path)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    assert cached_path(make_entry()) == tmp_path / "cache" / "toy.bin"
    monkeypatch.delenv("REFSAM3D_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "refsam3d"


def test_explicit_file_path_wins(tmp_path, monkeypatch):
    entry = make_entry(bundled=True)
    put(catalogue_module.BUNDLED_MODELS_DIR / "toy.bin")
    own = put(tmp_path / "work" / "toy-model", b"my own weights")
    monkeypatch.chdir(tmp_path / "work")  # a file named like the catalogue entry, in the current folder
    assert resolve_model("toy-model", catalogue=[entry]) == own.resolve()
    assert resolve_model(own, catalogue=[entry]) == own.resolve()


def test_bundled_file_comes_before_the_cache():
    entry = make_entry(bundled=True)
    bundled = put(catalogue_module.BUNDLED_MODELS_DIR / "toy.bin")
    put(cached_path(entry))
    assert resolve_model("toy-model", catalogue=[entry]) == bundled


def test_bundled_file_without_checksum_is_used_and_a_wrong_one_is_refused():
    unverified = make_entry(bundled=True, url=None, sha256=None, size_bytes=None)
    bundled = put(catalogue_module.BUNDLED_MODELS_DIR / "toy.bin")
    assert resolve_model("toy-model", catalogue=[unverified]) == bundled
    with pytest.raises(ChecksumMismatchError, match="reinstall"):
        resolve_model("toy-model", catalogue=[make_entry(bundled=True, sha256="1" * 64)])


def test_missing_bundle_falls_back_to_cache_or_says_what_is_wrong():
    entry = make_entry(bundled=True)
    cached = put(cached_path(entry))
    assert resolve_model("toy-model", catalogue=[entry]) == cached
    with pytest.raises(ModelUnavailableError, match="bundled model file .*toy.bin is missing"):
        resolve_model("toy-model", catalogue=[make_entry(bundled=True, url=None)])


def test_cached_file_is_verified_once_and_rechecked_after_a_change():
    entry = make_entry()
    cached = put(cached_path(entry))
    assert resolve_model("toy-model", catalogue=[entry]) == cached
    marker = cached.with_name(cached.name + ".sha256ok")
    assert json.loads(marker.read_text())["sha256"] == DATA_SHA
    corrupted = bytearray(DATA)
    corrupted[0] ^= 0xFF
    cached.write_bytes(bytes(corrupted))  # same size, new content and mtime
    os.utime(cached, ns=(marker.stat().st_mtime_ns + 10**9,) * 2)
    with pytest.raises(ChecksumMismatchError, match="delete it and download it again"):
        resolve_model("toy-model", catalogue=[entry])
    put(cached, DATA[:-1])
    with pytest.raises(ChecksumMismatchError, match="bytes, expected"):
        resolve_model("toy-model", catalogue=[entry])


def test_model_path_never_downloads(tmp_path, monkeypatch):
    monkeypatch.delenv("REFSAM3D_OFFLINE")
    with pytest.raises(ModelUnavailableError) as error:
        model_path("toy-model", catalogue=[make_entry()])
    assert "not downloaded yet" in str(error.value) and str(tmp_path / "cache" / "toy.bin") in str(error.value)


def test_list_models_shows_where_each_file_is():
    entries = [make_entry("in-package", "a.bin", bundled=True), make_entry("in-cache", "b.bin"),
               make_entry("half-done", "c.bin"), make_entry("elsewhere", "d.bin")]
    put(catalogue_module.BUNDLED_MODELS_DIR / "a.bin")
    put(cached_path(entries[1]))
    put(cached_path(entries[2]).with_name("c.bin.part"), b"x")
    table = list_models(entries)
    lines = table.splitlines()
    assert lines[0].split() == ["name", "version", "config", "size", "where"]
    assert "bundled" in lines[1] and "cached (" in lines[2] and "partly downloaded" in lines[3]
    assert "not downloaded" in lines[4] and "1.5 KiB" in lines[4]
    assert "sam-vit-b" in list_models() and "357.7 MiB" in list_models()
