"""The client of ``refsam3d serve``: standard library HTTP (so it runs in Slicer's Python) plus numpy.

    client = ServerClient("http://gpu-server:8765", token)       # token: the content of the server's --token-file
    remote = client.open(volume)                                  # uploads once: byte-shuffled zlib slabs
    liver, = remote.segment(Prompt(text="liver"))                 # RemoteResult: mask on the volume's grid
    refined, = remote.segment(Prompt(points=[(x, y, z)], previous=liver))
    remote.close()

A session the server no longer holds (expired, evicted, server restarted) is re-uploaded from the compressed bytes
kept from the first upload and the prompt is sent again, without the caller noticing; a refinement then starts from
the previous mask, which travels with the prompt. A ``cancel`` flag (Event or callable) is watched while waiting:
the server is told to stop and the call raises ``Cancelled``. ``progress(fraction, message)`` receives the server's
progress while a prompt runs. Connections are kept alive and reused; the token goes only into the Authorization
header and is never part of a message, a log line or ``repr``.
"""
from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import numpy as np

from ..engine.errors import Cancelled
from ..engine.prompts import Prompt
from .errors import ServerError, ServerUnavailable, SessionGone
from .frames import MEDIA_TYPE, PROTOCOL, FrameError, frame_prefix, split_frame
from .mask_codec import MaskDataError
from .messages import options_message, prompt_message, read_result
from .remote_result import RemoteResult
from .tokens import bearer, check_token
from .volume_codec import VolumeDataError, encode_slabs, volume_spec

log = logging.getLogger(__name__)
DEFAULT_PORT = 8765
TIMEOUT = 30.0  # connecting and short requests
LONG_TIMEOUT = 3600.0  # a text prompt on a CPU server may take minutes; progress polls show it is alive
REUSE_SECONDS = 20.0  # idle connections older than this are not reused (the server closes them after 75 s)
PROGRESS_EVERY = 0.5
FIRST_PROGRESS = 0.2  # a click answers sooner than this and needs no progress poll
CANCEL_GRACE = 5.0  # how long a cancelled call waits for the server's answer before giving up on it


@dataclass
class Reply:
    status: int
    reason: str
    content_type: str
    data: bytes

    def json(self) -> dict:
        return json.loads(self.data.decode("utf-8"))


def normalise_url(url: str) -> str:
    """'gpu:8765' or 'http://gpu:8765/' -> 'http://gpu:8765'; one-line ServerError for what cannot be a server URL."""
    text = (url or "").strip()
    if not text:
        raise ServerError("no server URL given; enter the address of a RefSAM3D server, e.g. http://gpu-server:8765")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ServerError(f"server URL scheme {parts.scheme!r} is not supported; use http:// or https://")
    if parts.username or parts.password:
        raise ServerError("the server URL must not hold a user name or token; give the token separately")
    if parts.query or parts.fragment or not parts.hostname:
        raise ServerError(f"{text!r} is not a server address; use http://host:port (e.g. http://gpu-server:8765)")
    try:
        port = parts.port
    except ValueError:
        raise ServerError(f"{text!r} has an invalid port; use http://host:port") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path.rstrip('/')}"


def _is_set(flag) -> bool:
    return flag is not None and bool(flag.is_set() if hasattr(flag, "is_set") else flag())


class ServerClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.url = normalise_url(url)
        parts = urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path
        self._headers = {"User-Agent": "refsam3d-client", "Accept": f"{MEDIA_TYPE}, application/json"}
        if token:
            self._headers["Authorization"] = bearer(check_token(token.strip(), "the server token"))
        self.timeout = float(timeout)
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()
        self._info: dict | None = None

    def __repr__(self) -> str:
        return f"ServerClient({self.url!r})"

    # ------------------------------------------------------------------ the API
    def info(self, refresh: bool = False, timeout: float | None = None) -> dict:
        """The server's /v1/info (model, device, limits); checks the token and the protocol version."""
        if self._info is None or refresh:
            reply = self._exchange("GET", "/v1/info", timeout=timeout)
            self._raise_for(reply, "asking for the server's info")
            try:
                info = reply.json()
            except (ValueError, UnicodeDecodeError):
                raise ServerError(f"{self.url} is not a RefSAM3D server (its /v1/info is not JSON)") from None
            if not isinstance(info, dict) or info.get("server") != "refsam3d":
                raise ServerError(f"{self.url} is not a RefSAM3D server; check the URL and port")
            if info.get("api") != PROTOCOL:
                raise ServerError(f"{self.url} speaks protocol {info.get('api')}, this client {PROTOCOL}; use the same "
                                  "RefSAM3D version on both sides")
            self._info = info
        return self._info

    @property
    def known_info(self) -> dict | None:
        """The server's info from the last request that asked for it (no request is made here)."""
        return self._info

    def describe(self, timeout: float | None = None) -> str:
        info = self.info(refresh=True, timeout=timeout)
        return f"RefSAM3D server {info.get('version')} at {self.url}: model {info.get('model')} on {info.get('device')}"

    def open(self, volume, modality: str | None = None, progress=None, cancel=None) -> RemoteSession:
        """Upload ``volume`` (a RefSAM3DLib Volume) once; -> the remote session that prompts go to."""
        info = self.info()
        try:
            spec = volume_spec(volume.array)
        except VolumeDataError as error:
            raise ServerError(str(error)) from None
        size = int(volume.array.size) * np.dtype(spec["dtype"]).itemsize
        limit = int(info.get("max_upload_bytes") or 0)
        if limit and size > limit:
            raise ServerError(f"the volume is {size / 1e6:.0f} MB ({'x'.join(map(str, volume.array.shape))} voxels); "
                              f"the server at {self.url} accepts at most {limit / 1e6:.0f} MB per upload; crop or "
                              "resample it first", 413, "too_large")
        header = {"volume": spec, "affine": volume.geometry.affine.tolist(), "modality": modality or volume.modality,
                  "name": volume.name}
        remote = RemoteSession(self, tuple(int(n) for n in volume.array.shape), [frame_prefix(header)])
        remote.upload(streamed=lambda: encode_slabs(volume.array, spec), progress=progress, cancel=cancel)
        return remote

    # ------------------------------------------------------------------ HTTP
    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _take(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                connection, since = self._idle.pop()
                if now - since < REUSE_SECONDS and connection.sock is not None:
                    connection.sock.settimeout(timeout)
                    connection.timeout = timeout
                    return connection, True
                connection.close()
        return self._new_connection(timeout), False

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.append((connection, time.monotonic()))

    def close(self) -> None:
        """Close the idle kept-alive connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.close()

    def _exchange(self, method: str, path: str, body=None, headers: dict | None = None,
                  timeout: float | None = None) -> Reply:
        """One request and its complete answer; a kept-alive connection the server closed meanwhile is replaced."""
        timeout = self.timeout if timeout is None else timeout
        replayable = body is None or isinstance(body, (bytes, bytearray, list))
        for attempt in (0, 1):
            connection, reused = self._take(timeout)
            try:
                connection.request(method, self._base + path, body=body, headers={**self._headers, **(headers or {})})
                response = connection.getresponse()
                data = response.read()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
                    http.client.IncompleteRead) as error:
                connection.close()
                if reused and replayable and attempt == 0:
                    self.close()  # the server closed idle connections (or restarted): the others are stale too
                    continue  # a fresh connection; the request was not processed on the closed one
                raise ServerUnavailable(f"the RefSAM3D server at {self.url} closed the connection before answering "
                                        f"({type(error).__name__}: stopped or restarted?); nothing was changed, "
                                        "try again") from None
            except TimeoutError:
                connection.close()
                raise ServerUnavailable(f"the RefSAM3D server at {self.url} did not answer within {timeout:g} s; "
                                        "check that it runs and is reachable") from None
            except (ConnectionRefusedError, socket.gaierror, ssl.SSLError, OSError, http.client.HTTPException) as error:
                connection.close()
                raise ServerUnavailable(f"cannot reach the RefSAM3D server at {self.url} ({_reason(error)}); start it "
                                        "(refsam3d serve) or check the URL") from None
            if response.will_close:
                connection.close()
            else:
                self._give_back(connection)
            return Reply(response.status, response.reason, response.getheader("Content-Type", ""), data)
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float | None = None,
              cancel=None, on_wait=None, on_cancel=None) -> Reply:
        """``_exchange`` on a helper thread while this one watches ``cancel`` and calls ``on_wait`` periodically."""
        if _is_set(cancel):
            raise Cancelled("cancelled by the user; nothing was changed")
        if cancel is None and on_wait is None:
            return self._exchange(method, path, body, headers, timeout)
        outcome: dict = {}
        finished = threading.Event()

        def run() -> None:
            try:
                outcome["reply"] = self._exchange(method, path, body, headers, timeout)
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
                outcome["error"] = error
            finally:
                finished.set()

        threading.Thread(target=run, name="RefSAM3D-request", daemon=True).start()
        next_wait = time.monotonic() + FIRST_PROGRESS
        while not finished.wait(0.02):
            if _is_set(cancel):
                if on_cancel is not None:
                    on_cancel()
                finished.wait(CANCEL_GRACE)
                raise Cancelled("cancelled by the user; nothing was changed")
            if on_wait is not None and time.monotonic() >= next_wait:
                next_wait = time.monotonic() + PROGRESS_EVERY
                on_wait()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["reply"]

    def _raise_for(self, reply: Reply, doing: str) -> None:
        if reply.status < 400:
            return
        code = detail = None
        if reply.content_type.startswith("application/json"):
            try:
                body = reply.json()
                code, detail = body.get("code"), body.get("detail")
            except (ValueError, UnicodeDecodeError, AttributeError):
                pass
        if reply.status == 401:
            raise ServerError(f"the RefSAM3D server at {self.url} refused the token (HTTP 401): "
                              f"{detail or 'a token is needed'}", 401, code)
        if reply.status == 404 and code == "session_not_found":
            raise SessionGone(f"{self.url}: {detail}", 404, code)
        if reply.status == 409 and code == "cancelled":
            raise Cancelled("cancelled by the user; nothing was changed")
        if detail:
            raise ServerError(f"the RefSAM3D server at {self.url} refused {doing} (HTTP {reply.status}): {detail}",
                              reply.status, code)
        raise ServerError(f"the RefSAM3D server at {self.url} answered HTTP {reply.status} {reply.reason} while "
                          f"{doing}; check the URL (a proxy in front?) and the server's log", reply.status, code)


class RemoteSession:
    """One uploaded volume on the server; prompts go here. Not for concurrent use (one prompt at a time)."""

    def __init__(self, client: ServerClient, shape: tuple[int, int, int], upload_parts: list[bytes]) -> None:
        self.client = client
        self.shape = shape
        self.id: str | None = None
        self.modality: str | None = None
        self.uploads = 0  # 1 after the first upload; more when the server had dropped the session
        self.upload_seconds = 0.0  # the last upload, from the first byte compressed to the session id received
        self._parts = upload_parts  # the frame as sent, kept to upload again without compressing again

    def __repr__(self) -> str:
        return f"RemoteSession({self.client.url!r}, shape={self.shape})"

    def upload(self, streamed=None, progress=None, cancel=None) -> None:
        """Send the volume: the first time compressed while sending (``streamed``), later from the kept bytes."""
        start = time.perf_counter()
        if progress is not None:
            progress(0.0, f"uploading the volume to {self.client.url}")
        headers = {"Content-Type": MEDIA_TYPE}
        if streamed is not None:
            kept = self._parts

            def body():
                yield kept[0]
                for part in streamed():
                    kept.append(part)
                    yield part
            sent = body()
        else:
            sent = list(self._parts)
            headers["Content-Length"] = str(sum(len(p) for p in sent))
        reply = self.client._call("POST", "/v1/sessions", sent, headers, LONG_TIMEOUT, cancel)
        self.client._raise_for(reply, "the volume")
        answer = reply.json()
        self.id, self.modality = answer["session"], answer.get("modality")
        self.uploads += 1
        self.upload_seconds = time.perf_counter() - start

    def segment(self, prompts, postprocessing=None, presence_threshold: float | None = None, progress=None,
                cancel=None) -> list[RemoteResult]:
        """Results for ``prompts`` (one Prompt or a list), as ``Session.segment`` returns them, masks included."""
        prompts = [prompts] if isinstance(prompts, Prompt) else list(prompts)
        try:
            return self._segment_once(prompts, postprocessing, presence_threshold, progress, cancel)
        except SessionGone:
            log.info("the server no longer holds session %s...; uploading the volume again", (self.id or "")[:8])
            self.upload(progress=progress, cancel=cancel)
        try:
            return self._segment_once(prompts, postprocessing, presence_threshold, progress, cancel)
        except SessionGone as error:
            raise ServerError(f"the server dropped the session again right after the upload ({error}); it may be out "
                              "of memory or restarting: try again later") from None

    def close(self) -> None:
        """Free the session on the server now (it would expire anyway); errors are ignored."""
        if self.id is None:
            return
        try:
            self.client._exchange("DELETE", f"/v1/sessions/{self.id}", timeout=5.0)
        except ServerError:
            log.debug("closing session on %s failed", self.client.url)
        self.id = None

    # ------------------------------------------------------------------ internals
    def _segment_once(self, prompts, postprocessing, presence_threshold, progress, cancel) -> list[RemoteResult]:
        request_id = uuid.uuid4().hex
        payload: list[bytes] = []
        offset = 0
        messages = []
        for prompt in prompts:
            message, offset = prompt_message(prompt, self.id, payload, offset)
            messages.append(message)
        header = {"request": request_id, "prompts": messages,
                  "options": options_message(postprocessing, presence_threshold)}
        body = b"".join([frame_prefix(header), *payload])
        path = f"/v1/sessions/{self.id}"
        start = time.perf_counter()
        reply = self.client._call(
            "POST", path + "/segment", body, {"Content-Type": MEDIA_TYPE}, LONG_TIMEOUT, cancel,
            on_wait=None if progress is None else lambda: self._show_progress(path, request_id, progress),
            on_cancel=lambda: self._cancel(path, request_id))
        self.client._raise_for(reply, "the prompt")
        round_trip = time.perf_counter() - start
        try:
            answer, data = split_frame(reply.data)
            results = [read_result(entry, data, self.shape, self.id) for entry in answer["results"]]
        except (FrameError, MaskDataError, KeyError, TypeError, ValueError) as error:
            raise ServerError(f"the answer of {self.client.url} cannot be read ({error}); use the same RefSAM3D "
                              "version on both sides") from None
        timings = {k: float(v) for k, v in (answer.get("timings") or {}).items()}
        for result in results:
            result.timings.update({f"server_{k}" if not k.startswith("server") else k: v for k, v in timings.items()})
            result.timings["round_trip_s"] = round_trip
            result.timings["transport_s"] = round_trip - timings.get("server_s", 0.0)
        if progress is not None:
            progress(1.0, "done")
        return results

    def _show_progress(self, path: str, request_id: str, progress) -> None:
        try:
            reply = self.client._exchange("GET", f"{path}/progress?{urlencode({'request': request_id})}", timeout=5.0)
            if reply.status == 200:
                state = reply.json()
                if state.get("state") in ("queued", "running"):
                    progress(float(state.get("fraction", 0.0)), f"server: {state.get('message', '')}")
        except (ServerError, ValueError):
            log.debug("progress poll failed", exc_info=True)

    def _cancel(self, path: str, request_id: str) -> None:
        try:
            self.client._exchange("POST", f"{path}/cancel", json.dumps({"request": request_id}).encode(),
                                  {"Content-Type": "application/json"}, timeout=5.0)
        except ServerError:
            log.debug("sending cancel failed", exc_info=True)


def _reason(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "unknown host name"
    return type(error).__name__ + (f": {error.strerror}" if getattr(error, "strerror", None) else "")
