"""The server's session store: idle sessions expire, the least recently used go first beyond the session count or the
memory cap, a session in use is never dropped, and a dropped session's clients learn why."""
from __future__ import annotations

import numpy as np
import pytest

from RefSAM3DLib.io.geometry import VolumeGeometry
from RefSAM3DLib.io.volume import Volume
from RefSAM3DLib.serving.errors import Problem
from RefSAM3DLib.serving.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def volume() -> Volume:
    return Volume(np.zeros((4, 4, 4), np.int16), VolumeGeometry(np.eye(4), (4, 4, 4)))


def gone(store: SessionStore, session_id: str) -> str:
    with pytest.raises(Problem) as refused, store.use(session_id):
        pass
    assert refused.value.status == 404 and refused.value.code == "session_not_found"
    return refused.value.detail


def test_idle_sessions_expire_but_not_while_in_use():
    clock, drops = Clock(), []
    store = SessionStore(idle_seconds=60, max_sessions=8, memory_bytes=10**9, on_drop=lambda: drops.append(1),
                         clock=clock)
    idle, busy = store.add(volume(), 10).id, store.add(volume(), 10).id
    with store.use(busy):
        clock.now = 120
        assert store.expire() == 1
    assert "expired after 1 min without prompts" in gone(store, idle) and drops == [1]
    with store.use(busy):
        pass
    assert "restarted" in gone(store, "an-id-nobody-had")


def test_least_recently_used_go_first_beyond_the_count_and_the_memory_cap():
    clock = Clock()
    store = SessionStore(idle_seconds=60, max_sessions=2, memory_bytes=100, clock=clock)
    first, second = store.add(volume(), 10).id, store.add(volume(), 10).id
    with store.use(first):
        pass  # first is now the most recently used
    third = store.add(volume(), 10).id
    assert "limited number of sessions" in gone(store, second)
    store.set_bytes(first, 80)
    store.set_bytes(third, 50)  # 130 > 100: the least recently used other than third goes
    assert "memory cap" in gone(store, first)
    with store.use(third):
        with pytest.raises(Problem, match="all in use") as full:
            store.max_sessions = 1
            store.add(volume(), 10)
    assert full.value.status == 503
    store.close(third)
    assert "closed" in gone(store, third) and len(store) == 0
