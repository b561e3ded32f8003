"""One persistent thread that does the compute work, so Slicer's UI stays live and the GPU stays warm.

All model work -- loading weights, opening a volume (resampling + window embeddings), decoding prompts -- or, when
computing on a server, uploading and waiting for its answers, runs on a single ``ThreadPoolExecutor(max_workers=1)``
thread that lives as long as the module. Keeping the same thread matters on CUDA: cuDNN/cuBLAS handles are per
thread, and a fresh thread per prompt pays their set-up every time (SlicerNNInteractive measured ~10x slower first
predictions). The thread never touches MRML; it receives plain arrays and returns plain results, and the Logic writes
them on the main thread.

Which engine a job goes to follows the configured ``ComputeTarget`` (``compute.py``): ``LocalEngine`` (the model in
this Python) or ``ServerEngine`` (a RefSAM3D server). Sessions are kept per (target, volume fingerprint, modality),
so a second prompt on an unchanged volume skips the image encoder, or the upload. Switching target releases the
other engine (its model memory, or its remote sessions). ``synchronous=True`` runs every job inline on the caller's
thread, for tests and batch scripts.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from .compute import ComputeTarget
from .local_engine import LocalEngine, load_predictor
from .server_engine import ServerEngine

log = logging.getLogger(__name__)

__all__ = ["ModelWorker", "load_predictor"]


class ModelWorker:
    def __init__(self, predictor_factory: Callable[[str, str], object] | None = None, synchronous: bool = False,
                 max_sessions: int = 1, client_factory: Callable | None = None) -> None:
        self.synchronous = synchronous
        self.max_sessions = max(1, int(max_sessions))
        self._executor = None if synchronous else ThreadPoolExecutor(max_workers=1, thread_name_prefix="RefSAM3D")
        self._lock = threading.Lock()
        self._wanted = ComputeTarget()
        self._local = LocalEngine(predictor_factory, self.max_sessions)
        self._client_factory = client_factory
        self._server: ServerEngine | None = None

    # ------------------------------------------------------------------ configuration (main thread)
    def configure(self, target: ComputeTarget) -> None:
        """Where the next job runs; a change of model, device or server takes effect with that job."""
        with self._lock:
            self._wanted = target

    @property
    def target(self) -> ComputeTarget:
        with self._lock:
            return self._wanted

    def session_key(self, fingerprint: tuple, modality: str | None) -> tuple:
        return (self.target, fingerprint, modality)

    def _engine_of(self, key: tuple):
        """The engine that holds (or would hold) ``key``'s session, without creating one."""
        if not key[0].remote:
            return self._local
        server = self._server
        return server if server is not None and server.target == key[0] else None

    def has_session(self, key: tuple) -> bool:
        engine = self._engine_of(key)
        return engine is not None and engine.has_session(key)

    def session(self, key: tuple):
        """The open session for ``key`` or None (tests count its encoded windows)."""
        engine = self._engine_of(key)
        return None if engine is None else engine.session(key)

    def session_token(self, key: tuple):
        engine = self._engine_of(key)
        return None if engine is None else engine.session_token(key)

    @property
    def sessions_opened(self) -> int:
        """Volumes opened here or uploaded to a server (encoder caches built), for tests and logs."""
        server = self._server
        return self._local.sessions_opened + (server.sessions_opened if server is not None else 0)

    @property
    def device_description(self) -> str:
        """'cuda', 'cpu', 'not loaded' or 'server http://...'; mentions a fallback to the CPU after GPU out-of-memory."""
        server = self._server
        if self.target.remote and server is not None and server.target == self.target:
            return server.description
        return self._local.description

    # ------------------------------------------------------------------ jobs
    def submit(self, function: Callable, *args, **kwargs) -> Future:
        """Run ``function`` on the worker thread (or inline when synchronous); errors land in the Future."""
        if self._executor is None:
            future: Future = Future()
            try:
                future.set_result(function(*args, **kwargs))
            except BaseException as error:  # noqa: BLE001 - delivered through the Future, as when threaded
                future.set_exception(error)
            return future
        return self._executor.submit(function, *args, **kwargs)

    def segment(self, key: tuple, volume, prompts: list, progress=None, cancel=None, **options) -> Future:
        """Segment ``prompts`` on the session for ``key``, opening (or uploading) it from ``volume`` if needed."""
        return self.submit(self._segment, key, volume, prompts, progress, cancel, options)

    def preload(self) -> Future:
        """Load the configured model (or reach the configured server) in the background."""
        return self.submit(lambda: self._engine_for(self.target).preload())

    def release(self) -> Future:
        """Forget the model and every session (frees GPU memory, closes remote sessions); the next job starts anew."""
        return self.submit(self._release_all)

    def shutdown(self, wait: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------ worker-thread side
    def _segment(self, key: tuple, volume, prompts: list, progress, cancel, options: dict):
        from RefSAM3DLib.engine.progress import check_cancel

        check_cancel(cancel)
        return self._engine_for(key[0]).segment(key, volume, prompts, progress=progress, cancel=cancel, **options)

    def _engine_for(self, target: ComputeTarget):
        """The engine for ``target``, releasing the other one when the target changed kind or server."""
        if not target.remote:
            if self._server is not None:
                self._server.release()
                self._server = None
            self._local.target = target
            return self._local
        if self._server is None or self._server.target != target:
            if self._server is not None:
                self._server.release()
            self._local.release()  # the model's memory is not needed while a server computes
            self._server = ServerEngine(target, self._client_factory, self.max_sessions)
        return self._server

    def _release_all(self) -> None:
        self._local.release()
        if self._server is not None:
            self._server.release()
            self._server = None
