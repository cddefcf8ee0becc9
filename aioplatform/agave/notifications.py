"""Notifications: agavepy's 5 notifications operations, plus the delivery attempts.

>>> sub = await agave.notifications.create(job.id, "http://127.0.0.1:8000/hook?job=${JOB_ID}&s=${STATUS}",
...                                         event="*", persistent=True)
>>> async for attempt in agave.notifications.list_attempts(sub.id):
...     print(attempt.event, attempt.response_code)

A webhook is a POST of the event's object (a job's JSON for job events) to the URL,
with Agave's URL macros (``${JOB_ID}``, ``${STATUS}``, ``${LAST_UPDATED}`` ...)
expanded. Webhook calls carry no credentials: a receiver should treat the body as a
hint and read the job back through the API before acting on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.paging import AsyncPager
from ..core.paths import segment
from .models.notifications import Notification, NotificationAttempt, NotificationPolicy

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["Notifications"]

ROOT = "notifications/v2/"
PAGE_SIZE = 100
RETRY_STRATEGIES = frozenset({"NONE", "IMMEDIATE", "DELAYED", "EXPONENTIAL"})


def _path(uuid: Any, *rest: str) -> str:
    return ROOT + "/".join((segment("uuid", uuid), *rest))


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value.strip()


def _policy(value: Any) -> dict[str, Any]:
    if isinstance(value, NotificationPolicy):
        value = value.to_wire()
    if not isinstance(value, Mapping):
        raise TypeError(f"policy must be a NotificationPolicy or a mapping, got {type(value).__name__}")
    policy = dict(value)
    strategy = policy.get("retryStrategy")
    if strategy is not None and (not isinstance(strategy, str) or strategy.upper() not in RETRY_STRATEGIES):
        raise ValueError(
            f"policy['retryStrategy'] must be one of {sorted(RETRY_STRATEGIES)}, got {strategy!r}"
        )
    for key in ("retryLimit", "retryRate", "retryDelay"):
        number = policy.get(key)
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 0):
            raise ValueError(f"policy[{key!r}] must be a non-negative integer, got {number!r}")
    return policy


def _request(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """A NotificationRequest checked for what the server requires (``url``, ``event``,
    ``associatedUuid``); an update (``partial``) may leave fields out."""
    if not isinstance(body, Mapping):
        raise TypeError(f"body must be a mapping (a NotificationRequest), got {type(body).__name__}")
    out = dict(body)
    for key in ("url", "event", "associatedUuid"):
        if key in out or not partial:
            out[key] = _text(f"body[{key!r}]", out.get(key))
    if "persistent" in out and not isinstance(out["persistent"], bool):
        raise TypeError(f"body['persistent'] must be a bool, got {type(out['persistent']).__name__}")
    if out.get("policy") is not None:
        out["policy"] = _policy(out["policy"])
    return out


class Notifications:
    """``client.notifications``: subscriptions to events of Agave objects (jobs ...)."""

    def __init__(self, client: AgaveClient):
        self._client = client

    def list(
        self,
        associated_uuid: str | None = None,
        *,
        search: Mapping[str, str] | None = None,
        limit: int = PAGE_SIZE,
        offset: int = 0,
    ) -> AsyncPager[Notification]:
        """Your subscriptions, newest first; ``associated_uuid`` keeps those on one object,
        ``search`` passes Agave search terms (``{"event.eq": "FINISHED"}``)."""
        params: dict[str, str] = {}
        if associated_uuid is not None:
            params["associatedUuid"] = _text("associated_uuid", associated_uuid)
        if search is not None:
            if not isinstance(search, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in search.items()
            ):
                raise TypeError("search must be a mapping of strings such as {'event.eq': 'FINISHED'}")
            params.update(search)
        return self._client._list(ROOT, Notification, params=params, limit=limit, offset=offset)

    async def add(self, body: Mapping[str, Any]) -> Notification:
        """agavepy's ``add``: subscribe with a NotificationRequest
        (``{"url", "event", "associatedUuid", "persistent", "policy"}``); 201."""
        return await self._client._model("POST", ROOT, Notification, json=_request(body))

    async def create(
        self,
        associated_uuid: str,
        url: str,
        *,
        event: str = "*",
        persistent: bool = False,
        policy: NotificationPolicy | Mapping[str, Any] | None = None,
    ) -> Notification:
        """Subscribe ``url`` (an http(s) webhook, macros allowed, or an email address) to
        ``event`` (a status name; ``*`` for every event) of ``associated_uuid``. A
        subscription that is not ``persistent`` fires once."""
        body: dict[str, Any] = {
            "associatedUuid": associated_uuid, "url": url, "event": event, "persistent": persistent,
        }  # fmt: skip
        if policy is not None:
            body["policy"] = policy
        return await self.add(body)

    async def get(self, uuid: str) -> Notification:
        return await self._client._model("GET", _path(uuid), Notification)

    async def update(self, uuid: str, body: Mapping[str, Any]) -> Notification:
        """Change a subscription (fields left out are kept); it is ACTIVE again."""
        return await self._client._model("POST", _path(uuid), Notification, json=_request(body, partial=True))

    async def delete(self, uuid: str) -> None:
        await self._client._call("DELETE", _path(uuid))

    def list_attempts(
        self, uuid: str, *, limit: int = PAGE_SIZE, offset: int = 0
    ) -> AsyncPager[NotificationAttempt]:
        """Every delivery attempt of a subscription, oldest first (retries included)."""
        return self._client._list(_path(uuid, "attempts"), NotificationAttempt, limit=limit, offset=offset)

    async def get_attempt(self, uuid: str, attempt_id: str) -> NotificationAttempt:
        path = _path(uuid, "attempts", segment("attempt_id", attempt_id))
        return await self._client._model("GET", path, NotificationAttempt)
