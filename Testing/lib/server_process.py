"""A real ``refsam3d serve`` in its own process on loopback, for tests: started, frozen, killed and restarted the way
an operator (or a crash) would, so clients are tested over real HTTP against the real server."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening on (http://\S+)")


def save_model(model, path: Path) -> Path:
    """A checkpoint the server can load with --model (the tests' tiny random models)."""
    from RefSAM3DLib.modeling.checkpoint import save_checkpoint

    return save_checkpoint(model, path)


class ServerProcess:
    def __init__(self, model: Path | str, *options: str, port: int = 0, verbose: bool = False, device: str = "cpu",
                 threads: int = 1, warm_up: bool = False) -> None:
        """``warm_up=False`` (tests) starts listening without the server's warm-up prompts: a faster start."""
        self.model = model
        self.warm_up = warm_up
        self.device = device
        self.threads = threads
        self.options = list(options)
        self.port = port
        self.verbose = verbose
        self.url: str | None = None
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 180.0) -> str:
        """Start it and return its URL once it accepts connections."""
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(self.threads))
        command = [sys.executable, "-m", "RefSAM3DLib.cli", *(["-v"] if self.verbose else []), "serve",
                   "--port", str(self.port), "--device", self.device, "--threads", str(self.threads),
                   "--model", str(self.model), *([] if self.warm_up else ["--no-warm-up"]), *self.options]
        self.output = []
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1)
        found = threading.Event()

        def drain(stream) -> None:  # keep reading, or a full pipe would block the server
            for line in stream:
                self.output.append(line)
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=drain, args=(self.process.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("refsam3d serve did not start:\n" + "".join(self.output))
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    @property
    def log(self) -> str:
        return "".join(self.output)

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        """What a crash or a power cut does: no clean shutdown, connections reset."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, timeout: float = 180.0) -> str:
        """Kill it and start a fresh one on the same port (it knows none of the old sessions)."""
        self.kill()
        return self.start(timeout)
