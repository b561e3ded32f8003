"""The open sessions of one compute engine, per (target, volume fingerprint, modality) key.

Local sessions hold window and slice embeddings (GPU memory), remote ones a volume on a server: either way only a
few may stay open, so the least recently used one is dropped first, and room is made *before* a new one opens
(two volumes' embeddings may not fit on a GPU together). Thread-safe: the panel asks from the GUI thread while
the worker opens sessions.
"""
from __future__ import annotations

import threading
from collections import OrderedDict


class SessionTable:
    def __init__(self, max_sessions: int = 1) -> None:
        self.max_sessions = max(1, int(max_sessions))
        self.opened = 0  # sessions ever added (volumes opened locally or uploaded)
        self._lock = threading.Lock()
        self._sessions: OrderedDict[tuple, object] = OrderedDict()

    def __contains__(self, key: tuple) -> bool:
        with self._lock:
            return key in self._sessions

    def get(self, key: tuple):
        """The session for ``key`` or None, without counting as a use."""
        with self._lock:
            return self._sessions.get(key)

    def use(self, key: tuple):
        """The session for ``key`` (now the most recently used) or None."""
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
            return session

    def make_room(self) -> list:
        """Drop the least recently used sessions until one more fits -> the dropped ones (for the caller to close)."""
        with self._lock:
            dropped = []
            while len(self._sessions) >= self.max_sessions:
                dropped.append(self._sessions.popitem(last=False)[1])
            return dropped

    def add(self, key: tuple, session) -> None:
        with self._lock:
            self._sessions[key] = session
            self.opened += 1

    def clear(self) -> list:
        """Forget every session -> them (for the caller to close)."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            return sessions
