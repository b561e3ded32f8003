"""Cases spread over one or more RefSAM3D servers: one thread per server takes the next case from a shared queue.

A server that becomes unreachable hands its case back to the queue and takes no more; the others carry on. A case
is tried on at most as many servers as there are, so a case that brings servers down cannot take them all. Errors
the user can act on (a damaged file, a point outside the volume) fail that case only.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RefSAM3DError
from .errors import ServerUnavailable

log = logging.getLogger(__name__)


@dataclass
class CaseOutcome:
    case: object
    ok: bool
    message: str
    server: str | None = None


def run_on_servers(cases: list, servers: list, work: Callable[[object, object], str],
                   report: Callable[[CaseOutcome], None]) -> list[CaseOutcome]:
    """``work(server, case)`` -> a one-line summary; ``report`` is called (under a lock) as each case ends."""
    queue = deque((case, 0) for case in cases)
    lock = threading.Lock()
    outcomes: list[CaseOutcome] = []

    def finish(outcome: CaseOutcome) -> None:
        with lock:
            outcomes.append(outcome)
            report(outcome)

    def serve(server) -> None:
        while True:
            with lock:
                if not queue:
                    return
                case, tries = queue.popleft()
            try:
                finish(CaseOutcome(case, True, work(server, case), server.url))
            except ServerUnavailable as error:
                with lock:
                    if tries + 1 < len(servers):
                        queue.appendleft((case, tries + 1))
                        case = None
                log.warning("%s; its remaining cases go to the other servers", error)
                if case is not None:
                    finish(CaseOutcome(case, False, str(error), server.url))
                return
            except RefSAM3DError as error:
                finish(CaseOutcome(case, False, " ".join(str(error).split()), server.url))

    threads = [threading.Thread(target=serve, args=(server,), name=f"RefSAM3D-batch-{i}", daemon=True)
               for i, server in enumerate(servers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for case, _ in queue:  # every server became unreachable
        finish(CaseOutcome(case, False, "no server was reachable any more; rerun the batch to retry"))
    return outcomes
