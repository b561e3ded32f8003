"""Prompts the server is working on, by the request id their client chose: progress to poll and a cancel flag.

A cancel may arrive before its request does (the client cancels while the body is still on its way); it is kept
for a minute, and the request then stops before any model work. Finished requests stay visible for a minute too,
so a client's last progress poll gets an answer.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from .errors import Problem

KEEP_SECONDS = 60.0
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def check_request_id(request_id: object) -> str:
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise Problem(400, "bad_request_id", "'request' must be 8 to 64 letters, digits, '-' or '_' "
                                             "(the client makes one random id per prompt)")
    return request_id


@dataclass
class RequestState:
    session_id: str
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"  # queued -> running -> done
    fraction: float = 0.0
    message: str = "waiting for the model"
    ended: float | None = None
    arrived: bool = False

    def __call__(self, fraction: float, message: str) -> None:
        """The engine's progress callback."""
        self.state = "running"
        self.fraction, self.message = float(fraction), str(message)

    def describe(self) -> dict:
        return {"state": self.state, "fraction": self.fraction, "message": self.message,
                "cancelled": self.cancel.is_set()}


class RequestStates:
    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, RequestState] = {}

    def begin(self, request_id: str, session_id: str) -> RequestState:
        with self._lock:
            self._prune_locked()
            state = self._states.get(request_id)
            if state is not None and (state.arrived or state.session_id != session_id):
                raise Problem(409, "duplicate_request", "this request id is already in use; make a new random id "
                                                        "for every prompt")
            if state is None:
                state = self._states[request_id] = RequestState(session_id)
            state.arrived, state.ended = True, None
            return state

    def end(self, request_id: str) -> None:
        with self._lock:
            state = self._states.get(request_id)
            if state is not None:
                state.state, state.ended = "done", self._clock()

    def cancel(self, session_id: str, request_id: str) -> bool:
        """Set the request's cancel flag (also for one that has not arrived yet); False if it already ended."""
        with self._lock:
            self._prune_locked()
            state = self._states.get(request_id)
            if state is None:
                # an early cancel is kept KEEP_SECONDS, like a finished request
                state = self._states[request_id] = RequestState(session_id, ended=self._clock())
            elif state.session_id != session_id or state.state == "done":
                return False
            state.cancel.set()
            return True

    def cancel_all(self) -> None:
        with self._lock:
            for state in self._states.values():
                state.cancel.set()

    def describe(self, session_id: str, request_id: str) -> dict:
        with self._lock:
            state = self._states.get(request_id)
            if state is None or state.session_id != session_id or not state.arrived:
                return {"state": "unknown", "fraction": 0.0, "message": "", "cancelled": False}
            return state.describe()

    def _prune_locked(self) -> None:
        now = self._clock()
        for request_id in [r for r, s in self._states.items() if s.ended is not None and now - s.ended > KEEP_SECONDS]:
            del self._states[request_id]
