"""The ``clients`` resource: OAuth API clients (agave.md §2.4), agavepy's ``clients`` operations.

The clients service authenticates with HTTP Basic ``username:password``, not a bearer
token, so the :class:`AgaveClient` needs ``username`` and ``password`` for these calls
(they are sent to ``/clients/v2`` only). Creating a client is how an agavepy user gets
the ``api_key``/``api_secret`` the token grants need:

>>> async with AgaveClient(base_url, username="jdoe", password=password) as agave:
...     created = await agave.clients.create("my-client", use=True)
...     await agave.tokens.create("jdoe", password)     # the password grant, new client's key
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.calls import CallTimeout
from ..core.paging import AsyncPager
from ..core.paths import segment
from .models.clients import Client, ClientSubscription

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["Clients"]

ROOT = "clients/v2"


def _text(name: str, value: object, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a string{' or None' if optional else ''}, got {type(value).__name__}"
        )
    return value


class Clients:
    """Create, list, get and delete OAuth clients, and manage their API subscriptions."""

    def __init__(self, client: AgaveClient):
        self._client = client

    def _path(self, client_name: str, *rest: str) -> str:
        return "/".join((ROOT, segment("client_name", client_name), *rest))

    async def create(
        self,
        client_name: str,
        description: str | None = None,
        *,
        tier: str = "Unlimited",
        callback_url: str | None = None,
        use: bool = False,
        timeout: CallTimeout = None,
    ) -> Client:
        """Create an OAuth client; the answer is the only one that carries its
        ``consumer_secret``. ``use=True`` makes this :class:`AgaveClient` use the new key
        and secret for its token grants from now on (as agavepy's ``clients_create``)."""
        segment("client_name", client_name)
        form = {"clientName": client_name, "tier": _text("tier", tier, optional=False) or "Unlimited"}
        if (text := _text("description", description)) is not None:
            form["description"] = text
        if (url := _text("callback_url", callback_url)) is not None:
            form["callbackUrl"] = url
        if not isinstance(use, bool):
            raise TypeError("use must be a bool")
        response = await self._client._request("POST", ROOT + "/", data=form, auth=self._client._basic_auth())
        created = self._client._structure(response, Client)
        if use:
            if not created.consumer_key or not created.consumer_secret:
                raise response.error("the clients service answered without the new key and secret")
            self._client.credentials.set_client(created.consumer_key, created.consumer_secret)
        return created

    def list(self, *, limit: int = 100, offset: int = 0) -> AsyncPager[Client]:
        """The user's OAuth clients (never with their secrets)."""
        auth = self._client._basic_auth()

        async def fetch(start: int, size: int) -> Sequence[Client]:
            params = {"limit": str(size), "offset": str(start)}
            response = await self._client._request("GET", ROOT + "/", params=params, auth=auth)
            return self._client._structure_list(response, Client)

        return AsyncPager.from_offsets(fetch, limit=limit, offset=offset)

    async def get_client_by_name(self, client_name: str, *, timeout: CallTimeout = None) -> Client:
        response = await self._client._request(
            "GET", self._path(client_name), auth=self._client._basic_auth()
        )
        return self._client._structure(response, Client)

    get = get_client_by_name

    async def delete(self, client_name: str, *, timeout: CallTimeout = None) -> None:
        """Delete an OAuth client; the tokens issued to it stop working."""
        path = self._path(client_name)
        await self._client._request("DELETE", path, auth=self._client._basic_auth())

    async def list_subscriptions_for_client(
        self, client_name: str, *, timeout: CallTimeout = None
    ) -> builtins.list[ClientSubscription]:
        path = self._path(client_name, "subscriptions")
        response = await self._client._request("GET", path, auth=self._client._basic_auth())
        return self._client._structure_list(response, ClientSubscription)

    list_subscriptions = list_subscriptions_for_client

    async def add_subscription_for_client(
        self,
        client_name: str,
        api_name: str,
        *,
        api_version: str = "v2",
        api_provider: str = "admin",
        timeout: CallTimeout = None,
    ) -> builtins.list[ClientSubscription]:
        """Subscribe the client to one API (``"Jobs"``, ``"Files"`` ...; ``"*"`` for all);
        the client's subscriptions after the change."""
        path = self._path(client_name, "subscriptions")
        form = {
            "apiName": _text("api_name", api_name, optional=False) or "",
            "apiVersion": _text("api_version", api_version, optional=False) or "",
            "apiProvider": _text("api_provider", api_provider, optional=False) or "",
        }
        if not form["apiName"]:
            raise ValueError("api_name must not be empty")
        response = await self._client._request("POST", path, data=form, auth=self._client._basic_auth())
        return self._client._structure_list(response, ClientSubscription)

    add_subscription = add_subscription_for_client

    async def delete_subscriptions_for_client(self, client_name: str, *, timeout: CallTimeout = None) -> None:
        """Remove every subscription of the client."""
        path = self._path(client_name, "subscriptions")
        await self._client._request("DELETE", path, auth=self._client._basic_auth())

    delete_subscriptions = delete_subscriptions_for_client
