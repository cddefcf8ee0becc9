"""User catalogs: uuid <-> username lookups, chunked and concurrent for thousands of ids (§5.1)."""

from __future__ import annotations

from typing import Any

from ..core.batch import check_batch_options, gather
from ..core.calls import CallTimeout
from ..core.checks import check_str
from ..core.serde import parse
from .base import AstakosBase, check_ids
from .errors import NoUserName, NoUUID
from .models import converter

__all__ = ["UserCatalogsMixin", "CATALOG_CHUNK"]

CATALOG_CHUNK = 500  # ids per catalog request when a lookup is split
CATALOG_CONCURRENCY = 8


class UserCatalogsMixin(AstakosBase):
    async def _catalog(
        self, path: str, key: str, answer: str, ids: list[str], chunk_size: int, concurrency: int
    ) -> dict[str, str]:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool):
            raise TypeError(f"chunk_size must be an integer, got {type(chunk_size).__name__}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        check_batch_options(concurrency)
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}  # nothing to look up: the answer is known without asking

        async def lookup(chunk: list[str]) -> dict[str, str]:
            # A lookup changes nothing: re-sending it is harmless.
            response = await self._account("POST", path, json={key: chunk}, idempotent=True)
            return parse(response, lambda found: converter.structure(found, dict[str, str]), key=answer)

        if len(ids) <= chunk_size:
            return await lookup(ids)
        chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
        result = await gather(lookup, chunks, concurrency=concurrency)
        merged: dict[str, str] = {}
        for outcome in result.outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            merged.update(outcome)
        return merged

    async def get_usernames(
        self,
        uuids: Any,
        *,
        chunk_size: int = CATALOG_CHUNK,
        concurrency: int = CATALOG_CONCURRENCY,
        timeout: CallTimeout = None,
    ) -> dict[str, str]:
        """``{uuid: username}`` for the uuids Astakos knows (unknown ones are left out).

        More than ``chunk_size`` uuids are looked up in chunks, ``concurrency`` at a time.
        The answer is one merged mapping, not a batch of outcomes: the first chunk that
        fails makes the call raise its error, so the batch options of ``*_many`` methods
        (``on_progress``, ``on_outcome``, ``breaker``, ``fail_fast``) have nothing to act
        on and are not offered. The same holds for :meth:`get_uuids` and the ``service_*``
        variants.
        """
        ids = check_ids(uuids, "uuids")
        return await self._catalog("user_catalogs", "uuids", "uuid_catalog", ids, chunk_size, concurrency)

    async def get_username(self, uuid: str, *, timeout: CallTimeout = None) -> str:
        """The username of ``uuid``; :class:`NoUserName` if there is none."""
        check_str("uuid", uuid)
        found = await self.get_usernames([uuid])
        if uuid not in found:
            raise NoUserName(uuid)
        return found[uuid]

    async def service_get_usernames(
        self,
        uuids: Any,
        *,
        chunk_size: int = CATALOG_CHUNK,
        concurrency: int = CATALOG_CONCURRENCY,
        timeout: CallTimeout = None,
    ) -> dict[str, str]:
        """``get_usernames`` with a service (component) token."""
        ids = check_ids(uuids, "uuids")
        return await self._catalog(
            "service/user_catalogs", "uuids", "uuid_catalog", ids, chunk_size, concurrency
        )

    async def service_get_username(self, uuid: str, *, timeout: CallTimeout = None) -> str:
        """``get_username`` with a service (component) token."""
        check_str("uuid", uuid)
        found = await self.service_get_usernames([uuid])
        if uuid not in found:
            raise NoUserName(uuid)
        return found[uuid]

    async def get_uuids(
        self,
        display_names: Any,
        *,
        chunk_size: int = CATALOG_CHUNK,
        concurrency: int = CATALOG_CONCURRENCY,
        timeout: CallTimeout = None,
    ) -> dict[str, str]:
        """``{username: uuid}`` for the usernames Astakos knows (case-insensitive match)."""
        names = check_ids(display_names, "display_names")
        return await self._catalog(
            "user_catalogs", "displaynames", "displayname_catalog", names, chunk_size, concurrency
        )

    async def get_uuid(self, display_name: str, *, timeout: CallTimeout = None) -> str:
        """The uuid of ``display_name``; :class:`NoUUID` if there is none."""
        check_str("display_name", display_name)
        found = await self.get_uuids([display_name])
        if display_name not in found:
            raise NoUUID(display_name)
        return found[display_name]

    async def service_get_uuids(
        self,
        display_names: Any,
        *,
        chunk_size: int = CATALOG_CHUNK,
        concurrency: int = CATALOG_CONCURRENCY,
        timeout: CallTimeout = None,
    ) -> dict[str, str]:
        """``get_uuids`` with a service (component) token."""
        names = check_ids(display_names, "display_names")
        return await self._catalog(
            "service/user_catalogs", "displaynames", "displayname_catalog", names, chunk_size, concurrency
        )

    async def service_get_uuid(self, display_name: str, *, timeout: CallTimeout = None) -> str:
        """``get_uuid`` with a service (component) token."""
        check_str("display_name", display_name)
        found = await self.service_get_uuids([display_name])
        if display_name not in found:
            raise NoUUID(display_name)
        return found[display_name]
