"""API client models (agave.md §2.4): an OAuth client and its API subscriptions."""

from __future__ import annotations

import attrs

from ...core.defaults import REDACTED
from ...core.serde import rename
from .common import AgaveModel, converter

__all__ = ["Client", "ClientSubscription"]


@attrs.define
class Client(AgaveModel):
    """An OAuth client. ``consumer_secret`` is only in the answer to a create (listings
    never show it); the repr never shows it."""

    name: str = ""
    description: str | None = None
    consumer_key: str = ""
    consumer_secret: str | None = attrs.field(default=None, repr=False)
    callback_url: str | None = None
    tier: str = ""

    def __repr__(self) -> str:
        secret = REDACTED if self.consumer_secret else None
        return (
            f"Client(name={self.name!r}, consumer_key={self.consumer_key!r}, "
            f"consumer_secret={secret!r}, tier={self.tier!r})"
        )


@attrs.define
class ClientSubscription(AgaveModel):
    """One API a client is subscribed to (``Jobs`` ``v2`` by ``admin`` ...)."""

    api_name: str = ""
    api_version: str = ""
    api_provider: str = ""
    api_context: str = ""
    api_status: str = ""
    tier: str = ""


rename(
    converter,
    Client,
    consumer_key="consumerKey",
    consumer_secret="consumerSecret",
    callback_url="callbackUrl",
)
rename(
    converter,
    ClientSubscription,
    api_name="apiName",
    api_version="apiVersion",
    api_provider="apiProvider",
    api_context="apiContext",
    api_status="apiStatus",
)
