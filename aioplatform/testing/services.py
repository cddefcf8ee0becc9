"""The contract between LocalPlatform and each embedded service (one sub-application each)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .platform import LocalPlatform
    from .store import Store

__all__ = ["EmbeddedService"]


class EmbeddedService:
    """One service of the embedded platform, mounted under ``prefix``.

    Subclasses create their tables and seed data in :meth:`setup` (idempotently: a
    file database survives restarts) and return their ``aiohttp.web.Application``.
    """

    name: str = ""
    prefix: str = ""  # e.g. "/saltant/api" (no trailing slash)

    def __init__(self, platform: LocalPlatform):
        self.platform = platform

    @property
    def store(self) -> Store:
        return self.platform.store

    @property
    def url(self) -> str:
        """The service's root URL on the running platform (trailing slash included)."""
        return self.platform.url + self.prefix + "/"

    async def setup(self) -> web.Application:
        raise NotImplementedError

    async def close(self) -> None:
        """Stop background work (lifecycle simulators); the store is closed by the platform."""
