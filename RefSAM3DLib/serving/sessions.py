"""The server's open sessions: one per uploaded volume, dropped when idle, over the memory cap (least recently used
first) or beyond the session count; a dropped session's id is remembered for a while so its clients learn why.

A session in use (a prompt running or waiting on it) is never dropped. Its id is a random 128-bit string, so one
client cannot guess another's. Each session also keeps its recent results under handles, with their masks in wire
form (a few kB each): a refinement names a handle and gets the engine's own result back -- its mask, and the handle
the engine keeps its probability map under -- exactly as ``Prompt(previous=result)`` in the same process.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from .errors import Problem
from .mask_codec import WireMask, decode_mask

RESULT_HANDLES = 32  # as many as the engine keeps model maps for
FORGOTTEN_IDS = 4096  # dropped session ids remembered with their reason


@dataclass
class ServedSession:
    id: str
    volume: object  # RefSAM3DLib.io.volume.Volume, as uploaded
    engine_session: object | None  # RefSAM3DLib.engine.session.Session, opened by the first prompt
    shape: tuple[int, int, int]
    created: float
    last_used: float
    bytes: int = 0
    users: int = 0  # requests running or waiting on it
    lock: threading.Lock = field(default_factory=threading.Lock)  # one prompt at a time per session
    results: OrderedDict = field(default_factory=OrderedDict)  # handle -> (result without its arrays, wire mask)

    def remember(self, result, wire: WireMask) -> str:
        handle = secrets.token_urlsafe(9)
        self.results[handle] = (replace(result, mask=None, probability=None), wire)
        while len(self.results) > RESULT_HANDLES:
            self.results.popitem(last=False)
        return handle

    def find_result(self, handle: str):
        """The result behind ``handle``, its mask restored, or None when the handle is unknown (or too old)."""
        kept = self.results.get(handle)
        if kept is None:
            return None
        result, wire = kept
        return replace(result, mask=decode_mask(wire))


class SessionStore:
    def __init__(self, idle_seconds: float, max_sessions: int, memory_bytes: int,
                 on_drop: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = float(idle_seconds)
        self.max_sessions = int(max_sessions)
        self.memory_bytes = int(memory_bytes)
        self._on_drop = on_drop
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, ServedSession] = OrderedDict()  # least recently used first
        self._forgotten: OrderedDict[str, str] = OrderedDict()
        self.dropped = {"idle": 0, "memory": 0, "count": 0, "closed": 0}

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(s.bytes for s in self._sessions.values())

    def _missing(self, session_id: str) -> Problem:
        reason = self._forgotten.get(session_id)
        why = {"idle": f"it expired after {self.idle_seconds / 60:g} min without prompts",
               "memory": "it was evicted to stay under the server's session memory cap",
               "count": "it was evicted: the server holds a limited number of sessions",
               "closed": "it was closed"}.get(reason or "", "this server does not know it (restarted?)")
        return Problem(404, "session_not_found", f"session {session_id[:8]}... is gone: {why}; upload the volume again")

    @contextmanager
    def use(self, session_id: str):
        """The session, marked in use (never dropped meanwhile) and as most recently used."""
        with self._lock:
            served = self._sessions.get(session_id)
            if served is None:
                raise self._missing(session_id)
            served.users += 1
            self._sessions.move_to_end(session_id)
        try:
            yield served
        finally:
            with self._lock:
                served.users -= 1
                served.last_used = self._clock()

    # ------------------------------------------------------------------ changing
    def add(self, volume, size: int) -> ServedSession:
        """Register a new session, first dropping least recently used idle ones beyond the count or memory cap."""
        now = self._clock()
        served = ServedSession(secrets.token_urlsafe(16), volume, None, tuple(volume.array.shape), now, now, bytes=size)
        with self._lock:
            dropped = self._make_room_locked(extra_sessions=1, extra_bytes=size)
            if len(self._sessions) >= self.max_sessions:
                raise Problem(503, "server_full", f"the server holds {len(self._sessions)} sessions, all in use; "
                                                  "try again in a moment")
            self._sessions[served.id] = served
        self._after_drop(dropped)
        return served

    def set_bytes(self, session_id: str, size: int) -> None:
        """A session's memory after a prompt; others are dropped (least recently used first) above the cap."""
        with self._lock:
            served = self._sessions.get(session_id)
            if served is None:
                return
            served.bytes = int(size)
            dropped = self._make_room_locked(0, 0, keep=session_id)
        self._after_drop(dropped)

    def close(self, session_id: str) -> bool:
        with self._lock:
            served = self._sessions.get(session_id)
            if served is None:
                return False
            self._drop_locked(session_id, "closed")
        self._after_drop(1)
        return True

    def expire(self) -> int:
        """Drop sessions idle for longer than ``idle_seconds``; -> how many."""
        now = self._clock()
        with self._lock:
            stale = [s.id for s in self._sessions.values() if not s.users and now - s.last_used > self.idle_seconds]
            for session_id in stale:
                self._drop_locked(session_id, "idle")
        self._after_drop(len(stale))
        return len(stale)

    def clear(self) -> None:
        with self._lock:
            for session_id in list(self._sessions):
                self._drop_locked(session_id, "closed")

    # ------------------------------------------------------------------ internals
    def _make_room_locked(self, extra_sessions: int, extra_bytes: int, keep: str | None = None) -> int:
        dropped = 0
        for served in list(self._sessions.values()):  # least recently used first
            over_count = len(self._sessions) + extra_sessions > self.max_sessions
            over_memory = sum(s.bytes for s in self._sessions.values()) + extra_bytes > self.memory_bytes
            if not (over_count or over_memory):
                break
            if served.users or served.id == keep:
                continue
            self._drop_locked(served.id, "count" if over_count else "memory")
            dropped += 1
        return dropped

    def _drop_locked(self, session_id: str, reason: str) -> None:
        self._sessions.pop(session_id, None)
        self._forgotten[session_id] = reason
        while len(self._forgotten) > FORGOTTEN_IDS:
            self._forgotten.popitem(last=False)
        self.dropped[reason] += 1

    def _after_drop(self, count: int) -> None:
        if count and self._on_drop is not None:
            self._on_drop()
