"""The embedded flowserv service: a placeholder until its issue lands (mounts an empty app)."""

from __future__ import annotations

from aiohttp import web

from ..services import EmbeddedService


class FlowservService(EmbeddedService):
    name = "flowserv"
    prefix = "/flowserv/api/v1"

    async def setup(self) -> web.Application:
        return web.Application()
