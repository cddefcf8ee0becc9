"""The embedded astakos service: a placeholder until its issue lands (mounts an empty app)."""

from __future__ import annotations

from aiohttp import web

from ..services import EmbeddedService


class AstakosService(EmbeddedService):
    name = "astakos"
    prefix = "/astakos"

    async def setup(self) -> web.Application:
        return web.Application()
