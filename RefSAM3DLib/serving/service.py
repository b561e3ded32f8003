"""The model behind the HTTP API: opening sessions from uploaded volumes, running prompts on them, cancel and progress.

Everything here is plain Python called from the app's worker threads; the app only moves bytes. Model work runs on
``concurrency`` persistent model threads (default 1: one GPU runs one prompt at a time, the others queue and can be
cancelled while they wait), one prompt at a time per session (the engine's Session is not thread-safe). Persistent
threads keep CUDA's per-thread handles warm (as the Slicer module's worker does) and keep the model's allocations in
one malloc arena, so freed session memory can be returned to the system. Decoding an upload and encoding the
answer's masks happen on the request threads, so clients' transfers overlap with other clients' model work. A reaper
thread drops idle sessions and gives their memory back; ``warm_up`` runs a prompt before the first client arrives.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..engine.errors import Cancelled
from ..engine.progress import check_cancel
from ..errors import RefSAM3DError
from ..io.checks import check_volume
from ..io.geometry import VolumeGeometry
from ..io.volume import Volume
from .errors import Problem
from .frames import PROTOCOL
from .mask_codec import encode_mask
from .memory import held_bytes, process_rss_bytes, release_freed_memory
from .messages import MAX_PROMPTS, MessageError, PreviousGone, read_options, read_prompt, result_message
from .request_states import RequestStates, check_request_id
from .sessions import SessionStore

log = logging.getLogger(__name__)


@dataclass
class ServiceLimits:
    max_upload_bytes: int = 1024 * 10**6
    idle_seconds: float = 30 * 60.0
    max_sessions: int = 32
    session_memory_bytes: int = 8 * 10**9
    concurrency: int = 1


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("refsam3d")
    except PackageNotFoundError:
        return "unknown"


class Service:
    def __init__(self, predictor, model_name: str, limits: ServiceLimits | None = None) -> None:
        self.predictor = predictor
        self.model_name = model_name
        self.limits = limits or ServiceLimits()
        self.store = SessionStore(self.limits.idle_seconds, self.limits.max_sessions,
                                  self.limits.session_memory_bytes, on_drop=release_freed_memory)
        self.requests = RequestStates()
        self._model_threads = ThreadPoolExecutor(max(1, int(self.limits.concurrency)),
                                                 thread_name_prefix="RefSAM3D-model")
        self._stats_lock = threading.Lock()
        self.stats = {"uploads": 0, "prompts": 0, "cancelled": 0, "refused": 0, "unauthorised": 0, "failed": 0}
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    # ------------------------------------------------------------------ lifetime
    def start(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, name="RefSAM3D-expiry", daemon=True)
            self._reaper.start()

    def stop(self) -> None:
        """Cancel what runs, stop expiring, drop every session."""
        self._stop.set()
        self.requests.cancel_all()
        if self._reaper is not None:
            self._reaper.join(timeout=5)
        self._model_threads.shutdown(wait=False, cancel_futures=True)
        self.store.clear()

    def warm_up(self) -> float:
        """A text prompt and a click on a small synthetic CT through the request path, before any client comes:
        imports, the text encoder, CUDA kernels and caches are set up now, not during the first user's prompt, and the
        server's memory at start is its memory at work. Counters start from zero afterwards; -> seconds taken."""
        started = time.perf_counter()
        shape = (48, 48, 32)
        i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
        body = ((i - 24) / 20.0) ** 2 + ((j - 24) / 18.0) ** 2 < 1
        array = np.where(body, 40, -1000).astype(np.int16)
        array[((i - 18) ** 2 + (j - 24) ** 2 + (k - 16) ** 2) < 49] = 120
        affine = np.diag([3.0, 3.0, 3.0, 1.0])
        affine[:3, 3] = (-72.0, -72.0, -48.0)
        session_id = self.add_session({"affine": affine.tolist(), "modality": "CT", "name": "warm-up"}, array)["session"]
        centre = (affine @ np.array([18.0, 24.0, 16.0, 1.0]))[:3].tolist()
        for request_id, prompt in (("warm-up-text", {"text": "liver"}),
                                   ("warm-up-click", {"points": [centre], "labels": [True]})):
            self.segment(session_id, {"request": request_id, "prompts": [prompt],
                                      "options": {"presence_threshold": 0.0}}, memoryview(b""))
        self.close(session_id)
        with self._stats_lock:
            self.stats = dict.fromkeys(self.stats, 0)
        self.store.dropped = dict.fromkeys(self.store.dropped, 0)
        release_freed_memory()
        return time.perf_counter() - started

    def _reap(self) -> None:
        interval = max(0.2, min(30.0, self.limits.idle_seconds / 4))
        while not self._stop.wait(interval):
            try:
                dropped = self.store.expire()
                if dropped:
                    log.info("%d idle session(s) expired; %d open", dropped, len(self.store))
            except Exception:  # noqa: BLE001 - the reaper must outlive any one failure
                log.exception("session expiry failed")

    def count(self, what: str) -> None:
        with self._stats_lock:
            self.stats[what] += 1

    # ------------------------------------------------------------------ requests
    def info(self) -> dict:
        with self._stats_lock:
            stats = dict(self.stats)
        stats.update({f"dropped_{k}": v for k, v in self.store.dropped.items()})
        return {"server": "refsam3d", "api": PROTOCOL, "version": package_version(), "model": self.model_name,
                "device": str(self.predictor.device), "max_upload_bytes": self.limits.max_upload_bytes,
                "session_idle_seconds": self.limits.idle_seconds, "max_sessions": self.limits.max_sessions,
                "session_memory_bytes": self.limits.session_memory_bytes, "sessions": len(self.store),
                "session_bytes": self.store.total_bytes, "rss_bytes": process_rss_bytes(), "stats": stats}

    def add_session(self, header: dict, array: np.ndarray) -> dict:
        """A session on an uploaded volume (already decoded against its spec), checked as the engine checks volumes.

        The engine opens it (resampling, normalisation) with the first prompt, in a compute slot: an upload never
        waits for other clients' model work, and its answer comes as soon as the bytes are in and checked.
        """
        affine = header.get("affine")
        try:
            geometry = VolumeGeometry(np.asarray(affine, dtype=np.float64), array.shape)
        except (TypeError, ValueError) as error:
            raise Problem(422, "bad_geometry",
                          f"'affine' must be the 4x4 IJK-to-RAS matrix of the volume ({error})") from None
        modality = header.get("modality")
        if modality not in (None, "CT", "MR"):
            raise Problem(422, "bad_modality", f"modality {modality!r} must be 'CT', 'MR' or null (detect)")
        name = header.get("name")
        name = str(name)[:120] if isinstance(name, str) and name.strip() else "uploaded volume"
        volume = Volume(array, geometry, modality=modality, source=name)
        try:
            check_volume(volume)
        except RefSAM3DError as error:  # NaN voxels, impossible spacing, ...
            raise Problem(422, "bad_volume", str(error)) from None
        served = self.store.add(volume, array.nbytes)
        self.count("uploads")
        log.info("session %s... added: %s, %d open", served.id[:8], "x".join(map(str, array.shape)), len(self.store))
        return {"session": served.id, "shape": list(array.shape), "idle_seconds": self.limits.idle_seconds}

    def _engine_session(self, served, progress):
        """The engine's session for ``served``, opened on its first prompt (on a model thread, its lock held)."""
        if served.engine_session is None:
            progress(0.0, "preparing the volume")
            try:
                served.engine_session = self.predictor.open(served.volume, modality=served.volume.modality)
            except RefSAM3DError as error:
                raise Problem(422, "bad_volume", str(error)) from None
        return served.engine_session

    def segment(self, session_id: str, header: dict, payload: memoryview) -> tuple[dict, list[bytes]]:
        """Run the prompts of a segment request; -> (answer header, mask bytes to follow it)."""
        request_id = check_request_id(header.get("request"))
        prompts = header.get("prompts")
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_PROMPTS:
            raise Problem(422, "bad_prompt", f"'prompts' must be a list of 1 to {MAX_PROMPTS} prompts")
        state = self.requests.begin(request_id, session_id)
        started = time.perf_counter()
        try:
            with self.store.use(session_id) as served:
                try:
                    postprocessing, presence = read_options(header.get("options"))
                    with self._waiting(served.lock, state.cancel):
                        asked = [read_prompt(p, payload, served.shape, served.find_result) for p in prompts]

                        def run_model():
                            began = time.perf_counter()
                            engine_session = self._engine_session(served, state)
                            results = engine_session.segment(asked, progress=state, cancel=state.cancel,
                                                             postprocessing=postprocessing, presence_threshold=presence)
                            return began, results, held_bytes(engine_session, skip=(self.predictor,))

                        began, results, size = self._on_model_thread(run_model, state.cancel)
                        computed = time.perf_counter()
                        wires = [encode_mask(r.mask) for r in results]
                        handles = [served.remember(r, w) for r, w in zip(results, wires)]
                except PreviousGone as error:
                    raise Problem(409, "previous_result_gone", str(error)) from None
                except (MessageError, RefSAM3DError) as error:
                    raise Problem(422, "bad_prompt", str(error)) from None
            entries, parts, offset = [], [], 0
            for result, handle, wire in zip(results, handles, wires):
                entries.append(result_message(result, handle, wire, offset))
                parts.append(wire.data)
                offset += len(wire.data)
            del results
            self.store.set_bytes(session_id, size)
            self.count("prompts")
            done = time.perf_counter()
            return {"session": session_id, "results": entries,
                    "timings": {"queue_s": began - started, "model_s": computed - began, "encode_s": done - computed,
                                "server_s": done - started}}, parts
        except Cancelled:
            self.count("cancelled")
            raise Problem(409, "cancelled", "cancelled by the client; nothing was returned") from None
        finally:
            self.requests.end(request_id)

    def progress(self, session_id: str, request_id: str) -> dict:
        return self.requests.describe(session_id, check_request_id(request_id))

    def cancel(self, session_id: str, request_id: object) -> bool:
        return self.requests.cancel(session_id, check_request_id(request_id))

    def close(self, session_id: str) -> bool:
        return self.store.close(session_id)

    # ------------------------------------------------------------------ waiting that a cancel interrupts
    @contextmanager
    def _waiting(self, lock, cancel):
        while not lock.acquire(timeout=0.05):
            check_cancel(cancel)
        try:
            check_cancel(cancel)
            yield
        finally:
            lock.release()

    def _on_model_thread(self, function, cancel):
        """``function()`` on a model thread, after the prompts queued before it; a cancel set while it waits in the
        queue stops it before it starts, one set while it runs stops the engine at its next batch."""
        def guarded():
            check_cancel(cancel)
            return function()

        return self._model_threads.submit(guarded).result()
