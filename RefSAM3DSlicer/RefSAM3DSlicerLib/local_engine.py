"""Prompts computed by the model in Slicer's own Python, on this computer's GPU or CPU.

It loads the configured model lazily (and again after a change of model or device) and keeps opened sessions
(cached window embeddings) per (target, volume fingerprint, modality), so a second prompt on an unchanged volume
skips the image encoder. All of it runs on the worker thread.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .compute import ComputeTarget
from .session_table import SessionTable

log = logging.getLogger(__name__)


def load_predictor(model: str, device: str):
    """Default factory: a zoo name or checkpoint path -> RefSAM3DPredictor on ``device``."""
    from RefSAM3DLib.engine.predictor import RefSAM3DPredictor

    return RefSAM3DPredictor.from_pretrained(model, device=device)


class LocalEngine:
    def __init__(self, predictor_factory: Callable[[str, str], object] | None = None, max_sessions: int = 1) -> None:
        self._factory = predictor_factory or load_predictor
        self.target = ComputeTarget()  # what preload() loads; the worker sets it
        self._lock = threading.Lock()
        self._predictor = None
        self._loaded: tuple[str, str] | None = None
        self._sessions = SessionTable(max_sessions)

    @property
    def sessions_opened(self) -> int:
        return self._sessions.opened

    def has_session(self, key: tuple) -> bool:
        return key in self._sessions

    def session(self, key: tuple):
        return self._sessions.get(key)

    def session_token(self, key: tuple):
        session = self.session(key)
        return None if session is None else session.token

    @property
    def description(self) -> str:
        predictor = self._predictor
        if predictor is None:
            return "not loaded"
        text = str(predictor.device)
        return text + (" (fell back from GPU: out of memory)" if getattr(predictor, "fell_back_to_cpu", False) else "")

    def segment(self, key: tuple, volume, prompts: list, progress=None, cancel=None, **options) -> list:
        predictor = self._current_predictor(key[0], progress)
        session = self._session_for(key, volume, predictor, progress)
        from RefSAM3DLib.engine.progress import check_cancel

        check_cancel(cancel)
        return session.segment(prompts, progress=progress, cancel=cancel, **options)

    def preload(self, progress=None) -> None:
        self._current_predictor(self.target, progress)

    def release(self) -> None:
        """Forget the model and every session (frees GPU memory); the next job loads it again."""
        self._sessions.clear()
        with self._lock:
            self._predictor = None
            self._loaded = None
        _free_device_cache()

    # ------------------------------------------------------------------ internals
    def _current_predictor(self, target: ComputeTarget, progress=None):
        wanted = (target.model, target.device)
        if self._predictor is None or self._loaded != wanted:
            self.release()
            if progress is not None:
                progress(0.0, f"loading model {wanted[0]} on {wanted[1]}")
            predictor = self._factory(*wanted)
            with self._lock:
                self._predictor, self._loaded = predictor, wanted
            log.info("RefSAM3D model %s loaded on %s", wanted[0], predictor.device)
        return self._predictor

    def _session_for(self, key: tuple, volume, predictor, progress):
        session = self._sessions.use(key)
        if session is not None:
            return session
        if volume is None:
            raise RuntimeError("the volume changed while segmenting; press Segment again")
        if self._sessions.make_room():
            _free_device_cache()
        if progress is not None:
            progress(0.0, "preparing the volume")
        session = predictor.open(volume, modality=key[2])
        self._sessions.add(key, session)
        return session


def _free_device_cache() -> None:
    import sys

    torch = sys.modules.get("torch")  # never import torch just to clean up
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
