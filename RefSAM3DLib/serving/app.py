"""The HTTP API of ``refsam3d serve`` (Starlette on uvicorn): routes, the token check, bodies in and out.

    GET    /healthz                           "ok" (no token: for load balancers; says nothing else)
    GET    /v1/info                           model, device, limits, sessions, counters
    POST   /v1/sessions                       frame: volume spec + affine + modality, payload = slabs -> {"session"}
    POST   /v1/sessions/{id}/segment          frame: request id + prompts + options -> frame: results + masks
    GET    /v1/sessions/{id}/progress?request=<request id>
    POST   /v1/sessions/{id}/cancel           {"request": <request id>}
    DELETE /v1/sessions/{id}

Errors are ``{"code", "detail"}`` with a 4xx status for what the client can fix (401 token, 404 session gone,
409 cancelled, 413 too large, 415 not a frame, 400/422 malformed or unusable content) and 500 for a bug (logged
here, never shown with its traceback). A body larger than the limit is refused from its Content-Length or as soon
as its header declares the volume, before the rest is read; an upload's slabs are decompressed while it arrives.
Model work runs on worker threads (``Service``), so the event loop keeps accepting and answering other clients.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .errors import Problem
from .frames import (
    MAX_HEADER_BYTES,
    MEDIA_TYPE,
    PREFIX_BYTES,
    FrameError,
    frame_prefix,
    header_length,
    parse_header,
    split_frame,
)
from .service import Service
from .tokens import authorised
from .volume_codec import SlabDecoder, VolumeDataError, VolumeTooLarge

log = logging.getLogger(__name__)
_SLACK = 1.01  # incompressible data grows by a few bytes per slab


def _problem_response(problem: Problem) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    return JSONResponse({"code": problem.code, "detail": problem.detail}, status_code=problem.status, headers=headers)


class BearerAuth:
    """ASGI middleware: every path but /healthz needs ``Authorization: Bearer <token>`` (constant-time check)."""

    def __init__(self, app, token: str, service: Service) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.service = service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = next((value for name, value in scope["headers"] if name == b"authorization"), None)
            if not authorised(given, self.expected):
                self.service.count("unauthorised")
                detail = ("this server needs a token: send 'Authorization: Bearer <token>' with the content of the "
                          "server's --token-file" if given is None else
                          "the token does not match the server's; use the content of its --token-file")
                await _problem_response(Problem(401, "unauthorised", detail))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _check_media_type(request: Request) -> None:
    if request.headers.get("content-type", "").split(";")[0].strip() != MEDIA_TYPE:
        raise Problem(415, "not_a_frame", f"send the body as {MEDIA_TYPE} (what RefSAM3DLib.serving.client sends)")


def _too_large(service: Service, size: str) -> Problem:
    return Problem(413, "too_large", f"the body is {size}; this server accepts at most "
                                     f"{service.limits.max_upload_bytes / 1e6:.0f} MB (refsam3d serve --max-upload-mb)")


def _check_declared_length(request: Request, service: Service) -> int:
    limit = int(service.limits.max_upload_bytes * _SLACK) + PREFIX_BYTES + MAX_HEADER_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(service, f"{int(declared) / 1e6:.0f} MB")
    return limit


async def _read_frame(request: Request, service: Service) -> tuple[dict, memoryview]:
    """A small frame (prompts and masks), whole."""
    _check_media_type(request)
    limit = _check_declared_length(request, service)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(service, "larger")
    try:
        return split_frame(body)
    except FrameError as error:
        raise Problem(400, "bad_frame", str(error)) from None


async def _read_volume(request: Request, service: Service) -> tuple[dict, SlabDecoder]:
    """An upload: its header is checked as soon as it has arrived (an oversized volume is refused before its voxels
    are read), then the slabs are decompressed on worker threads while the rest of the body arrives."""
    _check_media_type(request)
    limit = _check_declared_length(request, service)
    start = bytearray()
    header = decoder = None
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(service, "larger")
            if decoder is not None:
                decoder.feed(chunk)
                continue
            start += chunk
            if len(start) >= PREFIX_BYTES and len(start) >= PREFIX_BYTES + header_length(start):
                end = PREFIX_BYTES + header_length(start)
                header = parse_header(memoryview(start)[PREFIX_BYTES:end])
                decoder = SlabDecoder(header.get("volume"), service.limits.max_upload_bytes)
                decoder.feed(memoryview(start)[end:])
        if decoder is None:
            header_length(start)  # says what is wrong with a body too short for its header
            raise FrameError("the body ends inside the frame header")
        return header, decoder
    except BaseException as error:
        if decoder is not None:
            decoder.close()
        if isinstance(error, FrameError):
            raise Problem(400, "bad_frame", str(error)) from None
        if isinstance(error, VolumeTooLarge):
            raise Problem(413, "too_large", str(error)) from None
        if isinstance(error, VolumeDataError):
            raise Problem(422, "bad_volume", str(error)) from None
        raise


def create_app(service: Service, token: str | None = None):
    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def info(request: Request) -> Response:
        return JSONResponse(service.info())

    async def upload(request: Request) -> Response:
        header, decoder = await _read_volume(request, service)

        def decode_and_add():
            try:
                array = decoder.finish()
            except VolumeDataError as error:
                raise Problem(400, "bad_volume_data", str(error)) from None
            return service.add_session(header, array)

        return JSONResponse(await anyio.to_thread.run_sync(decode_and_add), status_code=201)

    async def segment(request: Request) -> Response:
        header, payload = await _read_frame(request, service)
        answer, parts = await anyio.to_thread.run_sync(service.segment, request.path_params["session_id"], header,
                                                       payload)
        return Response(b"".join([frame_prefix(answer), *parts]), media_type=MEDIA_TYPE)

    async def progress(request: Request) -> Response:
        return JSONResponse(service.progress(request.path_params["session_id"], request.query_params.get("request")))

    async def cancel(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            raise Problem(400, "bad_json", "send {\"request\": \"<request id>\"} as JSON") from None
        request_id = body.get("request") if isinstance(body, dict) else None
        return JSONResponse({"cancelled": service.cancel(request.path_params["session_id"], request_id)},
                            status_code=202)

    async def close(request: Request) -> Response:
        service.close(request.path_params["session_id"])
        return Response(status_code=204)

    async def on_problem(request: Request, problem: Problem) -> Response:
        service.count("refused")
        log.info("%s %s -> %d %s", request.method, request.url.path, problem.status, problem.code)
        return _problem_response(problem)

    async def on_http_exception(request: Request, error: HTTPException) -> Response:
        service.count("refused")
        detail = {404: f"no such endpoint {request.url.path}; see RefSAM3DLib/serving/app.py for the API",
                  405: f"{request.method} is not allowed on {request.url.path}"}.get(error.status_code, error.detail)
        return JSONResponse({"code": "http_error", "detail": detail}, status_code=error.status_code)

    async def on_bug(request: Request, error: Exception) -> Response:
        service.count("failed")
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse({"code": "internal_error", "detail": "the server failed on this request (a bug, logged "
                                                                 "on the server); please report it"}, status_code=500)

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        try:
            yield
        finally:
            service.stop()

    routes = [
        Route("/healthz", health),
        Route("/v1/info", info),
        Route("/v1/sessions", upload, methods=["POST"]),
        Route("/v1/sessions/{session_id}", close, methods=["DELETE"]),
        Route("/v1/sessions/{session_id}/segment", segment, methods=["POST"]),
        Route("/v1/sessions/{session_id}/progress", progress),
        Route("/v1/sessions/{session_id}/cancel", cancel, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={Problem: on_problem, HTTPException: on_http_exception, Exception: on_bug})
    return BearerAuth(app, token, service) if token else app


__all__ = ["BearerAuth", "create_app"]
