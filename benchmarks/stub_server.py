"""A canned keep-alive HTTP/1.1 server: the rig that measures a client free of any real server.

    python -m benchmarks.stub_server ROUTES.json PORT [CPU]

``ROUTES.json`` maps ``"METHOD /path"`` (the query is ignored, and so is a trailing
slash) to ``[status, body]``; every answer is prebuilt bytes, so the server's own cost per request
is a dictionary lookup and one write. It runs in its own process, pinned to ``CPU`` where
the OS allows, and imports nothing of aioplatform (starting it costs no client imports).
An unknown route is a 404 with an empty JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 404: "Not Found"}


def answer(status: int, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Server: stub\r\n\r\n"
    )
    return head.encode("ascii") + body


class Canned(asyncio.Protocol):
    def __init__(self, routes: dict[str, bytes], missing: bytes):
        self.routes, self.missing = routes, missing
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still on its way
            self.buffer = self.buffer[end + 4 + length :]
            method, target, _ = head.split(" ", 2)
            path = target.split("?", 1)[0].rstrip("/")
            reply = self.routes.get(f"{method} {path}", self.missing)
            assert self.transport is not None
            self.transport.write(reply)


async def serve(spec: dict[str, list[Any]], port: int) -> None:
    routes = {key.rstrip("/"): answer(int(status), body.encode()) for key, (status, body) in spec.items()}
    missing = answer(404, b"{}")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Canned(routes, missing), "127.0.0.1", port, backlog=512)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    routes_file, port = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3 and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):  # not allowed here: the OS schedules it
            os.sched_setaffinity(0, {int(sys.argv[3])})
    spec = json.loads(Path(routes_file).read_text(encoding="utf-8"))
    asyncio.run(serve(spec, port))


if __name__ == "__main__":
    main()
