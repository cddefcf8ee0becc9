"""The contract between LocalPlatform and each embedded service (one sub-application each)."""

from __future__ import annotations

from collections.abc import Callable
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
    # Seeded secrets a caller may fix through ``LocalPlatform(credentials={...})``.
    credential_names: tuple[str, ...] = ()

    def __init__(self, platform: LocalPlatform):
        self.platform = platform

    @property
    def store(self) -> Store:
        return self.platform.store

    def credential(self, name: str, make: Callable[[], str]) -> str:
        """The caller's fixed value for seeded secret ``name``, else a fresh one from ``make``.

        ``make`` draws from :mod:`secrets`: a credential never derives from the platform's
        seed, which anyone can guess.
        """
        assert name in self.credential_names, name
        value = self.platform.credentials.get(name)
        return value if value is not None else make()

    @property
    def url(self) -> str:
        """The service's root URL on the running platform (trailing slash included)."""
        return self.platform.url + self.prefix + "/"

    async def setup(self) -> web.Application:
        raise NotImplementedError

    async def close(self) -> None:
        """Stop background work (lifecycle simulators); the store is closed by the platform."""
