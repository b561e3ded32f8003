"""RefSAM3D over HTTP: ``refsam3d serve`` keeps the model on a (GPU) server, thin clients send volumes and prompts.

- ``frames``, ``volume_codec``, ``mask_codec``, ``messages``: the wire format both sides share (a JSON header and
  a binary payload; volumes as byte-shuffled zlib slabs, masks as packed bits of their bounding box).
- ``tokens``: the shared secret (read from a file, compared in constant time, never logged).
- ``errors``: what a client or the server reports, one line each.
- ``memory``, ``sessions``, ``request_states``, ``service``, ``app``: the server (``app`` needs starlette + uvicorn).
- ``client``, ``remote_result``, ``dispatch``: the client (standard library + numpy only, so it runs in Slicer's
  Python), and batches spread over several servers.

Importing this package imports nothing: the client side must not pull in the server's web stack.
"""
