"""The embedded saltant service: a placeholder until its issue lands (mounts an empty app)."""

from __future__ import annotations

from aiohttp import web

from ..services import EmbeddedService


class SaltantService(EmbeddedService):
    name = "saltant"
    prefix = "/saltant/api"

    async def setup(self) -> web.Application:
        return web.Application()
