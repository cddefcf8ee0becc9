"""A purpose-built aiohttp server for transport tests: scripted faults, counters, slow routes.

It reuses the embedded platform's fault injector (the same middleware users get) so
"the server saw N attempts" is counted on the server side, not guessed by the client.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator

import attrs
import pytest
from aiohttp import web

from aioplatform.testing.faults import FaultInjector


@attrs.define
class ScriptedServer:
    url: str
    faults: FaultInjector
    seen: collections.Counter[str] = attrs.Factory(collections.Counter)  # requests that arrived
    handled: collections.Counter[str] = attrs.Factory(collections.Counter)  # handlers that ran
    arrivals: list[tuple[float, str]] = attrs.Factory(list)
    connections: int = 0

    def u(self, path: str) -> str:
        return self.url + path


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    faults = FaultInjector(seed=0)
    state = ScriptedServer(url="", faults=faults)
    loop = asyncio.get_running_loop()

    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        state.seen[request.path] += 1
        state.arrivals.append((loop.time(), request.path))
        return await handler(request)

    async def ok(request: web.Request) -> web.Response:
        state.handled[request.path] += 1
        body = await request.read()
        return web.json_response(
            {"method": request.method, "path": request.path, "n": state.handled[request.path],
             "body": body.decode(), "query": dict(request.query)}
        )  # fmt: skip

    async def slow(request: web.Request) -> web.Response:
        state.handled[request.path] += 1
        await asyncio.sleep(float(request.query.get("delay", "1")))
        return web.json_response({"slow": True})

    async def status(request: web.Request) -> web.Response:
        state.handled[request.path] += 1
        code = int(request.match_info["code"])
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.json_response({"detail": f"status {code} as asked"}, status=code, headers=headers)

    async def echo_auth(request: web.Request) -> web.Response:
        # A careless server that echoes the credential back in its error body.
        secret = request.headers.get("Authorization", "")
        return web.json_response({"detail": f"bad credential {secret}"}, status=401)

    async def auth(request: web.Request) -> web.Response:
        state.handled[request.path] += 1
        if request.headers.get("Authorization") != "Token fresh-token-2":
            return web.json_response({"detail": "expired"}, status=401)
        return web.json_response({"ok": True})

    async def pages(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        state.handled[f"/pages?page={page}"] += 1
        last = int(request.query.get("last", "5"))
        items = list(range((page - 1) * 10, page * 10))
        return web.json_response({"results": items, "next": page + 1 if page < last else None})

    async def partial(request: web.Request) -> web.StreamResponse:
        # Headers and the start of the body, then the connection dies mid-response.
        state.handled[request.path] += 1
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        await asyncio.sleep(0.05)
        if request.transport is not None:
            request.transport.abort()
        return response

    async def text_error(request: web.Request) -> web.Response:
        return web.Response(text="<html>gateway exploded</html>", status=502, content_type="text/html")

    app = web.Application(middlewares=[count, faults.middleware()])
    app.router.add_route("*", "/ok/{name}", ok)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_get("/echo-auth", echo_auth)
    app.router.add_get("/auth", auth)
    app.router.add_get("/pages", pages)
    app.router.add_get("/text-error", text_error)
    app.router.add_route("*", "/partial", partial)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()

    def protocol():  # type: ignore[no-untyped-def]
        state.connections += 1
        return runner.server()  # type: ignore[misc]

    srv = await loop.create_server(protocol, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        srv.close()
        await runner.cleanup()


def dumps(obj: object) -> str:
    return json.dumps(obj)
