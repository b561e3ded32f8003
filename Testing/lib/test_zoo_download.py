"""Downloads against a real HTTP server on 127.0.0.1: full, resumed, restarted, corrupted, offline.

The server serves one file, honours (or ignores) ``Range``, can hang up part-way once, and records
the ``Range`` header of every request, so resumption is checked on the wire, not assumed.
"""
from __future__ import annotations

import hashlib
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from RefSAM3DLib.zoo import (
    ChecksumMismatchError,
    ModelEntry,
    ModelUnavailableError,
    UnverifiedDownloadWarning,
    download_model,
    resolve_model,
)
from RefSAM3DLib.zoo import download as download_module
from RefSAM3DLib.zoo.download import download

FILE_PATH = "/model.bin"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        state = self.server.state
        requested_range = self.headers.get("Range")
        state.range_headers.append(requested_range)
        if self.path != FILE_PATH:
            self.send_error(404)
            return
        payload, start = state.payload, 0
        if requested_range and state.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested_range).group(1))
            if start >= len(payload):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(payload)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        else:
            self.send_response(200)
        body = payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.drop_after is not None:  # promise the whole body, send part of it, hang up
            cut, state.drop_after = state.drop_after, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: LocalFileServer


class LocalFileServer:
    """Context manager: ``with LocalFileServer(data) as server: download(server.url, ...)``."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.honour_range = True
        self.drop_after: int | None = None  # bytes of the next body to send before hanging up
        self.range_headers: list[str | None] = []
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.state = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{FILE_PATH}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


PAYLOAD = np.random.default_rng(7).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    with LocalFileServer(PAYLOAD) as running:
        yield running


@pytest.fixture(autouse=True)
def isolated_zoo(tmp_path, monkeypatch):
    """A private cache, no offline flag from the environment, no pauses between retries."""
    monkeypatch.setenv("REFSAM3D_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("REFSAM3D_OFFLINE", raising=False)
    monkeypatch.setattr(download_module, "RETRY_WAIT_S", 0.0)


def test_full_download_verifies_and_renames(server, tmp_path):
    dest = tmp_path / "models" / "model.bin"
    assert download(server.url, dest, sha256=PAYLOAD_SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not download_module.part_path(dest).exists()
    assert server.range_headers == [None]


def test_interrupted_download_keeps_part_and_next_call_resumes(server, tmp_path):
    dest = tmp_path / "model.bin"
    server.drop_after = 100_000
    with pytest.raises(ModelUnavailableError, match="run again to resume") as error:
        download(server.url, dest, sha256=PAYLOAD_SHA, progress=False, attempts=1)
    assert "\n" not in str(error.value)
    part = download_module.part_path(dest)
    assert part.stat().st_size == 100_000 and not dest.exists()
    download(server.url, dest, sha256=PAYLOAD_SHA, progress=False)
    assert server.range_headers == [None, "bytes=100000-"]
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_dropped_connection_is_resumed_within_one_call(server, tmp_path):
    dest = tmp_path / "model.bin"
    server.drop_after = 123_457
    download(server.url, dest, sha256=PAYLOAD_SHA, progress=False, attempts=3)
    assert server.range_headers == [None, "bytes=123457-"]
    assert dest.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    dest = tmp_path / "model.bin"
    download_module.part_path(dest).write_bytes(b"garbage that must not be kept" * 100)
    server.honour_range = False
    download(server.url, dest, sha256=PAYLOAD_SHA, progress=False)
    assert server.range_headers[0] is not None  # we asked to resume, the server sent everything
    assert dest.read_bytes() == PAYLOAD


def test_part_that_is_already_complete_is_finished_without_data(server, tmp_path):
    dest = tmp_path / "model.bin"
    download_module.part_path(dest).write_bytes(PAYLOAD)
    download(server.url, dest, sha256=PAYLOAD_SHA, progress=False)  # server answers 416 */size
    assert dest.read_bytes() == PAYLOAD and server.range_headers == [f"bytes={len(PAYLOAD)}-"]


def test_checksum_mismatch_deletes_everything(server, tmp_path):
    dest = tmp_path / "model.bin"
    with pytest.raises(ChecksumMismatchError, match="sha256 mismatch") as error:
        download(server.url, dest, sha256="0" * 64, progress=False)
    assert "\n" not in str(error.value)
    assert not dest.exists() and not download_module.part_path(dest).exists()
    with pytest.raises(ChecksumMismatchError, match="bytes"):
        download(server.url, dest, sha256=PAYLOAD_SHA, size_bytes=len(PAYLOAD) + 1, progress=False)
    assert not dest.exists() and not download_module.part_path(dest).exists()


def test_unknown_checksum_warns(server, tmp_path):
    with pytest.warns(UnverifiedDownloadWarning, match="cannot be verified"):
        download(server.url, tmp_path / "model.bin", progress=False)
    assert (tmp_path / "model.bin").read_bytes() == PAYLOAD


def test_unreachable_server_and_http_errors_say_where_to_put_the_file(server, tmp_path):
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}/model.bin"
    dest = tmp_path / "cache" / "model.bin"
    with pytest.raises(ModelUnavailableError) as error:
        download(url, dest, sha256=PAYLOAD_SHA, progress=False, timeout_s=5)
    message = str(error.value)
    assert "\n" not in message and "offline?" in message
    assert f"download {url} on a machine with internet and place it at {dest}" in message
    assert "--model /path/to/file" in message
    with pytest.raises(ModelUnavailableError, match="HTTP 404"):
        download(server.url.replace("model.bin", "missing.bin"), dest, sha256=PAYLOAD_SHA, progress=False)


def entry_for(server, name="toy-model", bundled=False, sha256=PAYLOAD_SHA):
    return ModelEntry(name=name, version="1", config="demo", file="toy_model.bin", url=server.url, sha256=sha256,
                      size_bytes=len(PAYLOAD), licence="Apache-2.0", card="cards/none.md", bundled=bundled,
                      description="test model")


def test_offline_flag_forbids_downloads_and_names_the_cache_path(server, tmp_path, monkeypatch):
    monkeypatch.setenv("REFSAM3D_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as error:
        resolve_model("toy-model", catalogue=[entry_for(server)])
    message = str(error.value)
    assert "REFSAM3D_OFFLINE" in message and str(tmp_path / "cache" / "toy_model.bin") in message
    assert server.url in message and "\n" not in message
    assert server.range_headers == []  # not even a connection attempt


def test_resolve_downloads_into_cache_once(server, tmp_path):
    catalogue = [entry_for(server)]
    path = resolve_model("toy-model", catalogue=catalogue)
    assert path == tmp_path / "cache" / "toy_model.bin" and path.read_bytes() == PAYLOAD
    assert (tmp_path / "cache" / "toy_model.bin.sha256ok").exists()
    assert resolve_model("Toy-Model", catalogue=catalogue) == path
    assert download_model("toy-model", catalogue=catalogue) == path
    assert server.range_headers == [None]  # the second and third lookups used the cache
