"""`refsam3d serve`: the model on this machine (a GPU server), behind an HTTP API for thin clients (the Slicer panel,
`refsam3d batch --server`).

Before listening it runs one text prompt and one click on a synthetic CT (``--no-warm-up`` skips them), so the first
client does not wait for the model's set-up. Binds 127.0.0.1 by default; any other address needs ``--token-file``
(clients then send the token as ``Authorization: Bearer``). TLS is not done here: put a reverse proxy (nginx, Caddy) in front for HTTPS. Sessions
(one per uploaded volume) expire after ``--session-idle-minutes`` without prompts, and the least recently used are
dropped beyond ``--max-sessions`` or ``--session-memory-gb``. Prints one line ``refsam3d serve: listening on URL``
when it accepts connections (``--port 0`` picks a free port, and the line says which).
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys

from .arguments import UsageError, add_model_arguments, check_device

DEFAULT_PORT = 8765


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve the model over HTTP to the Slicer panel and remote batches",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 needs --token-file)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--token-file", help="file holding the secret clients must send (required off loopback)")
    p.add_argument("--max-upload-mb", type=float, default=1024.0,
                   help="largest volume accepted, uncompressed (default 1024 MB: 512x512x2000 int16)")
    p.add_argument("--session-idle-minutes", type=float, default=30.0,
                   help="drop a session after this long without prompts (default 30)")
    p.add_argument("--max-sessions", type=int, default=32, help="sessions held at once (default 32)")
    p.add_argument("--session-memory-gb", type=float, default=None,
                   help="memory all sessions may hold together (default: half the GPU's, or half the RAM on CPU)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="prompts computed at the same time (default 1; the others wait their turn)")
    p.add_argument("--threads", type=int, default=None, help="PyTorch CPU threads (default: PyTorch's choice)")
    p.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                   help="skip the text prompt and click on a synthetic CT run before listening (they take the first "
                        "use's set-up costs off the first client)")
    add_model_arguments(p)
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_arguments(args: argparse.Namespace) -> str | None:
    """Everything checked before the model loads; -> the token (None on loopback without --token-file)."""
    from ..serving.tokens import TokenError, read_token_file, readable_by_others

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be between 0 and 65535")
    for name, value, low in (("--max-upload-mb", args.max_upload_mb, 1.0), ("--session-idle-minutes",
                             args.session_idle_minutes, 0.001), ("--max-sessions", args.max_sessions, 1),
                             ("--concurrency", args.concurrency, 1)):
        if not value >= low:
            raise UsageError(f"{name} {value:g}: must be at least {low:g}")
    if args.session_memory_gb is not None and not args.session_memory_gb > 0:
        raise UsageError(f"--session-memory-gb {args.session_memory_gb:g}: must be positive")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads}: must be at least 1")
    token = None
    if args.token_file:
        try:
            token = read_token_file(args.token_file)
        except TokenError as error:
            raise UsageError(f"--token-file: {error}") from None
        if readable_by_others(args.token_file):
            print(f"refsam3d serve: warning: {args.token_file} is readable by other users; chmod 600 it",
                  file=sys.stderr)
    elif not is_loopback(args.host):
        raise UsageError(f"--host {args.host} lets other machines connect: give --token-file FILE with a long random "
                         "secret (clients send it as a Bearer token); for HTTPS put a reverse proxy in front")
    return token


def session_memory_bytes(args: argparse.Namespace, device) -> int:
    from ..serving.memory import physical_memory_bytes

    if args.session_memory_gb is not None:
        return int(args.session_memory_gb * 1e9)
    if device.type == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory * 0.5)
    return int((physical_memory_bytes() or 16 * 10**9) * 0.5)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and without it Nagle's algorithm holds
    # each answer's body until the client's delayed ACK (40 ms per request on a kept-alive connection)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({error.strerror}); choose another --port or --host") \
            from None
    sock.listen(128)
    return sock


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..engine.predictor import RefSAM3DPredictor
    from ..serving.app import create_app
    from ..serving.service import Service, ServiceLimits

    token = check_arguments(args)
    check_device(args.device)
    sock = bind(args.host, args.port)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    predictor = RefSAM3DPredictor.from_pretrained(args.model, device=args.device, anatomy_prior=args.anatomy_prior)
    limits = ServiceLimits(max_upload_bytes=int(args.max_upload_mb * 1e6),
                           idle_seconds=args.session_idle_minutes * 60.0, max_sessions=args.max_sessions,
                           session_memory_bytes=session_memory_bytes(args, predictor.device),
                           concurrency=args.concurrency)
    service = Service(predictor, str(args.model), limits)
    if args.warm_up:
        seconds = service.warm_up()
        logging.getLogger("refsam3d.serve").info("warmed up in %.1f s", seconds)
    config = uvicorn.Config(create_app(service, token), log_level="info" if args.verbose else "warning",
                            access_log=bool(args.verbose), timeout_keep_alive=75, timeout_graceful_shutdown=10,
                            lifespan="on")
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"refsam3d serve: listening on http://{shown}:{port} (model {args.model} on {predictor.device}, "
          f"{'token required' if token else 'no token: this machine only'})", flush=True)
    logging.getLogger("refsam3d.serve").info("sessions expire after %g min idle", args.session_idle_minutes)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
