"""One persistent thread that owns the model, so Slicer's UI stays live and the GPU stays warm.

All model work -- loading weights, opening a volume (resampling + window embeddings), decoding prompts --
runs on a single ``ThreadPoolExecutor(max_workers=1)`` thread that lives as long as the module. Keeping the
same thread matters on CUDA: cuDNN/cuBLAS handles are per thread, and a fresh thread per prompt pays their
set-up every time (SlicerNNInteractive measured ~10x slower first predictions). The thread never touches
MRML; it receives plain arrays and returns plain results, and the Logic writes them on the main thread.

Opened sessions (cached window embeddings) are kept per (model, volume fingerprint, modality), so a
second prompt on an unchanged volume skips the image encoder. ``synchronous=True`` runs every job inline
on the caller's thread, for tests and batch scripts.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from .settings import DEFAULT_MODEL

log = logging.getLogger(__name__)


def load_predictor(model: str, device: str):
    """Default factory: a zoo name or checkpoint path -> RefSAM3DPredictor on ``device``."""
    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor

    return RefSAM3DPredictor.from_pretrained(model, device=device)


def _raise_if_cancelled(cancel) -> None:
    if cancel is not None and (cancel.is_set() if hasattr(cancel, "is_set") else cancel()):
        from RefSAM3DLib.engine.errors import Cancelled

        raise Cancelled("cancelled by the user; nothing was changed")


class ModelWorker:
    def __init__(self, predictor_factory: Callable[[str, str], object] | None = None, synchronous: bool = False,
                 max_sessions: int = 1) -> None:
        self._factory = predictor_factory or load_predictor
        self.synchronous = synchronous
        self.max_sessions = max(1, int(max_sessions))
        self._executor = None if synchronous else ThreadPoolExecutor(max_workers=1, thread_name_prefix="RefSAM3D")
        self._lock = threading.Lock()
        self._wanted = (DEFAULT_MODEL, "auto")
        self._predictor = None
        self._predictor_config = None
        self._sessions: OrderedDict[tuple, object] = OrderedDict()
        self.sessions_opened = 0  # how many volumes were opened (encoder caches built), for tests and logs

    # ------------------------------------------------------------------ configuration (main thread)
    def configure(self, model: str, device: str) -> None:
        """Which model/device the next job uses; a change drops the old model and its sessions then."""
        with self._lock:
            self._wanted = (str(model), str(device))

    @property
    def model_config(self) -> tuple[str, str]:
        with self._lock:
            return self._wanted

    def session_key(self, fingerprint: tuple, modality: str | None) -> tuple:
        return (self.model_config, fingerprint, modality)

    def has_session(self, key: tuple) -> bool:
        with self._lock:
            return key in self._sessions

    def session(self, key: tuple):
        """The open session for ``key`` or None (tests count its encoded windows)."""
        with self._lock:
            return self._sessions.get(key)

    def session_token(self, key: tuple) -> int | None:
        session = self.session(key)
        return None if session is None else session.token

    @property
    def device_description(self) -> str:
        """'cuda', 'cpu', or 'not loaded'; mentions a fallback to the CPU after GPU out-of-memory."""
        predictor = self._predictor
        if predictor is None:
            return "not loaded"
        text = str(predictor.device)
        return text + (" (fell back from GPU: out of memory)" if getattr(predictor, "fell_back_to_cpu", False) else "")

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
        """Segment ``prompts`` on the session for ``key``, opening it from ``volume`` if it is not cached."""
        return self.submit(self._segment, key, volume, prompts, progress, cancel, options)

    def preload(self) -> Future:
        """Load the configured model in the background (e.g. while the user types the first prompt)."""
        return self.submit(self._current_predictor, None)

    def release(self) -> Future:
        """Forget the model and every session (frees GPU memory); the next job loads it again."""
        return self.submit(self._drop_everything)

    def shutdown(self, wait: bool = False) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------ worker-thread side
    def _segment(self, key: tuple, volume, prompts: list, progress, cancel, options: dict):
        _raise_if_cancelled(cancel)
        predictor = self._current_predictor(progress, wanted=key[0])
        session = self._session_for(key, volume, predictor, progress)
        _raise_if_cancelled(cancel)
        return session.segment(prompts, progress=progress, cancel=cancel, **options)

    def _current_predictor(self, progress=None, wanted: tuple[str, str] | None = None):
        wanted = wanted or self.model_config
        if self._predictor is None or self._predictor_config != wanted:
            self._drop_everything()
            if progress is not None:
                progress(0.0, f"loading model {wanted[0]} on {wanted[1]}")
            predictor = self._factory(*wanted)
            with self._lock:
                self._predictor, self._predictor_config = predictor, wanted
            log.info("RefSAM3D model %s loaded on %s", wanted[0], predictor.device)
        return self._predictor

    def _session_for(self, key: tuple, volume, predictor, progress):
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
                return session
        if volume is None:
            raise RuntimeError("the volume changed while segmenting; press Segment again")
        with self._lock:  # make room first: two volumes' embeddings may not fit on the GPU together
            evicted = len(self._sessions) >= self.max_sessions
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
        if evicted:
            self._free_device_cache()
        if progress is not None:
            progress(0.0, "preparing the volume")
        session = predictor.open(volume, modality=key[2])
        with self._lock:
            self._sessions[key] = session
            self.sessions_opened += 1
        return session

    def _drop_everything(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._predictor = None
            self._predictor_config = None
        self._free_device_cache()

    @staticmethod
    def _free_device_cache() -> None:
        import sys

        torch = sys.modules.get("torch")  # never import torch just to clean up
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
