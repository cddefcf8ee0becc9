"""A purpose-built loopback server for wire-level client tests of every service.

It runs an aiohttp server on 127.0.0.1 with its own event loop on a thread, so a
synchronous (hypothesis) test can drive the async clients with :meth:`Loopback.run`.
Every request is recorded as ``(method, raw_path)`` — the path exactly as it came
over the wire, percent-encoding and query included — and answered with a scripted
answer for its path, or else a harmless ``404 {"message": "nothing here"}``. The
Astakos catalog (``POST /astakos/identity/v2.0/tokens``) is always answered and not
recorded, so an Astakos client finds its account root here.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aiohttp import web

from aioplatform.astakos import AstakosClient
from aioplatform.core.retry import RetryPolicy
from aioplatform.flowserv import FlowservClient
from aioplatform.saltant import SaltantClient

T = TypeVar("T")

SALTANT = "/saltant/api/"
ASTAKOS_AUTH = "/astakos/identity/v2.0"
ASTAKOS_ACCOUNT = "/astakos/account/v1.0/"
FLOWSERV = "/flowserv/api/v1/"
TOKEN = "6db2fceae34390b8dd5a62f1e79e2da74b3d0c4f"


class Loopback:
    """The server, its loop thread, and one client per service bound to that loop."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        # path (decoded, as request.path) -> (status, body bytes, content type)
        self.answers: dict[str, tuple[int, bytes, str]] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def answer(self, path: str, body: Any, status: int = 200, content_type: str = "application/json") -> None:
        """Answer requests to ``path`` with ``body`` (JSON-encoded unless it is bytes)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path] = (status, raw, content_type)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "POST" and request.path == ASTAKOS_AUTH + "/tokens" and not body:
            return web.json_response(self._catalog())
        self.seen.append((request.method, request.raw_path))
        status, raw, content_type = self.answers.get(
            request.path, (404, b'{"message": "nothing here"}', "application/json")
        )
        return web.Response(status=status, body=raw, content_type=content_type)

    def _catalog(self) -> dict[str, Any]:
        endpoint = {"publicURL": self.url + ASTAKOS_ACCOUNT.rstrip("/"), "versionId": "v1.0"}
        service = {"name": "astakos_account", "type": "account", "endpoints": [endpoint]}
        return {"access": {"serviceCatalog": [service]}}

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)  # newlines too
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        none = RetryPolicy.none()
        self.saltant = SaltantClient(self.url + SALTANT, TOKEN, retry=none)
        self.astakos = AstakosClient(TOKEN, self.url + ASTAKOS_AUTH, retry=none)
        self.flowserv = FlowservClient(self.url + FLOWSERV, token=TOKEN, retry=none)

    async def _stop(self) -> None:
        for client in (self.saltant, self.astakos, self.flowserv):
            await client.aclose()
        assert self._runner is not None
        await self._runner.cleanup()

    @contextmanager
    def running(self) -> Iterator[Loopback]:
        self._thread.start()
        self.run(self._start())
        try:
            yield self
        finally:
            self.run(self._stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()
