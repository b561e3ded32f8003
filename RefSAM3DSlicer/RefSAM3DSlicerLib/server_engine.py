"""Prompts computed by a RefSAM3D server (`refsam3d serve`): the panel on a laptop, the model on a GPU server.

A volume is uploaded once per (target, volume fingerprint, modality) and prompts go to its remote session; the
results come back with masks on the volume's grid, like the local engine's, so the Logic writes, undoes and exports
them the same way. A session the server dropped (expiry, restart) is uploaded again by the client on its own; the
result handles then change, and a refinement starts from the previous mask, which the results keep in compact form.
Only the standard library and numpy are used (``RefSAM3DLib.serving.client``): no web stack in Slicer's Python.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from .compute import ComputeTarget
from .session_table import SessionTable

log = logging.getLogger(__name__)


class ServerEngine:
    def __init__(self, target: ComputeTarget, client_factory: Callable | None = None, max_sessions: int = 1) -> None:
        from RefSAM3DLib.serving.client import ServerClient

        self.target = target
        self.client = (client_factory or ServerClient)(target.server_url, target.token or None)
        self._sessions = SessionTable(max_sessions)  # key -> RemoteSession

    @property
    def sessions_opened(self) -> int:
        return self._sessions.opened

    def has_session(self, key: tuple) -> bool:
        return key in self._sessions

    def session(self, key: tuple):
        return self._sessions.get(key)

    def session_token(self, key: tuple):
        remote = self.session(key)
        return None if remote is None else remote.id

    @property
    def description(self) -> str:
        info = self.client.known_info  # known after the first request; never a request from the main thread
        where = f"server {self.client.url}"
        return f"{where}, {info.get('device')}" if info else where

    def segment(self, key: tuple, volume, prompts: list, progress=None, cancel=None, postprocessing=None,
                presence_threshold: float | None = None) -> list:
        remote = self._remote_for(key, volume, progress, cancel)
        return remote.segment(prompts, postprocessing=postprocessing, presence_threshold=presence_threshold,
                              progress=progress, cancel=cancel)

    def preload(self, progress=None) -> None:
        self.client.info(refresh=True)  # reachable, right token, same protocol: said before the first prompt

    def release(self) -> None:
        """Close the remote sessions now (they would expire on the server anyway)."""
        for remote in self._sessions.clear():
            remote.close()
        self.client.close()

    def _remote_for(self, key: tuple, volume, progress, cancel):
        remote = self._sessions.use(key)
        if remote is not None:
            return remote
        if volume is None:
            raise RuntimeError("the volume changed while segmenting; press Segment again")
        for old in self._sessions.make_room():
            old.close()
        remote = self.client.open(volume, modality=key[2], progress=progress, cancel=cancel)
        self._sessions.add(key, remote)
        log.info("volume uploaded to %s in %.2f s", self.client.url, remote.upload_seconds)
        return remote
