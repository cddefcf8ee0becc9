"""Notifications: agavepy's 5 notifications operations, plus the delivery attempts.

>>> sub = await agave.notifications.create(job.id, "http://127.0.0.1:8000/hook?job=${JOB_ID}&s=${STATUS}",
...                                         event="*", persistent=True)
>>> async for attempt in agave.notifications.list_attempts(sub.id):
...     print(attempt.event, attempt.response_code)

Batches: ``create_many`` subscribes many (e.g. one webhook per job of a sweep) and
``delete_many`` removes many, with one outcome per input.

A webhook is a POST of the event's object (a job's JSON for job events) to the URL,
with Agave's URL macros (``${JOB_ID}``, ``${STATUS}``, ``${LAST_UPDATED}`` ...)
expanded. Webhook calls carry no credentials: a receiver should treat the body as a
hint and read the job back through the API before acting on it.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import defaults
from ..core.batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    check_batch_options,
    gather,
    gather_prepared,
)
from ..core.calls import CallTimeout
from ..core.paging import AsyncPager
from ..core.paths import segment
from ..core.reconcile import gather_reconciled
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


def _request(body: Any, *, partial: bool = False, name: str = "body") -> dict[str, Any]:
    """A NotificationRequest checked for what the server requires (``url``, ``event``,
    ``associatedUuid``); an update (``partial``) may leave fields out."""
    if not isinstance(body, Mapping):
        raise TypeError(f"{name} must be a mapping (a NotificationRequest), got {type(body).__name__}")
    out = dict(body)
    for key in ("url", "event", "associatedUuid"):
        if key in out or not partial:
            out[key] = _text(f"{name}[{key!r}]", out.get(key))
    if "persistent" in out and not isinstance(out["persistent"], bool):
        raise TypeError(f"{name}['persistent'] must be a bool, got {type(out['persistent']).__name__}")
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

    async def add(self, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> Notification:
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
        timeout: CallTimeout = None,
    ) -> Notification:
        """Subscribe ``url`` (an http(s) webhook, macros allowed, or an email address) to
        ``event`` (a status name; ``*`` for every event) of ``associated_uuid``. A
        subscription that is not ``persistent`` fires once."""
        _text("associated_uuid", associated_uuid)  # named as the caller wrote it
        body: dict[str, Any] = {
            "associatedUuid": associated_uuid, "url": url, "event": event, "persistent": persistent,
        }  # fmt: skip
        if policy is not None:
            body["policy"] = policy
        return await self.add(body)

    async def get(self, uuid: str, *, timeout: CallTimeout = None) -> Notification:
        return await self._client._model("GET", _path(uuid), Notification)

    async def update(
        self, uuid: str, body: Mapping[str, Any], *, timeout: CallTimeout = None
    ) -> Notification:
        """Change a subscription (fields left out are kept); it is ACTIVE again."""
        return await self._client._model("POST", _path(uuid), Notification, json=_request(body, partial=True))

    async def delete(self, uuid: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", _path(uuid))

    def list_attempts(
        self, uuid: str, *, limit: int = PAGE_SIZE, offset: int = 0
    ) -> AsyncPager[NotificationAttempt]:
        """Every delivery attempt of a subscription, oldest first (retries included)."""
        return self._client._list(_path(uuid, "attempts"), NotificationAttempt, limit=limit, offset=offset)

    async def get_attempt(
        self, uuid: str, attempt_id: str, *, timeout: CallTimeout = None
    ) -> NotificationAttempt:
        path = _path(uuid, "attempts", segment("attempt_id", attempt_id))
        return await self._client._model("GET", path, NotificationAttempt)

    # -- batches ------------------------------------------------------------------------------

    async def create_many(
        self,
        requests: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = defaults.CONCURRENCY,
        reconcile: bool = False,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[Notification]:
        """Subscribe every NotificationRequest; one outcome (the Notification, or the
        exception) per request, in order. Every request is checked before the first is sent.

        An add is a POST: never re-sent once it may have reached the server. With
        ``reconcile=True`` the subscriptions of each watched uuid are listed before the
        batch, and each add whose answer was lost (sent, then the connection dropped or
        timed out, or a 5xx other than 503) is looked up afterwards: a subscription on the
        same uuid with the same ``url``, ``event`` and ``persistent`` that was not there
        before and no other outcome holds becomes its outcome; otherwise the error stays.
        So the server holds one subscription per Notification outcome and none for an
        error (unless another client subscribes the very same URL to the same object
        meanwhile). Costs one listing per distinct uuid before the batch and one per lost
        answer. ``on_outcome`` and ``breaker`` are :func:`~aioplatform.gather`'s (a lost
        answer is reported once reconciled); ``result.items`` are the requests as given.
        """
        if isinstance(requests, (str, bytes, Mapping)) or not isinstance(requests, Iterable):
            raise TypeError(
                f"requests must be an iterable of notification requests, got {type(requests).__name__}"
            )
        given = builtins.list(requests)
        bodies = [_request(r, name=f"requests[{i}]") for i, r in enumerate(given)]
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast, reconcile)
        if not reconcile:
            return await gather_prepared(
                self.add, given, bodies, concurrency=concurrency, fail_fast=fail_fast,
                on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
            )  # fmt: skip
        watched = sorted({b["associatedUuid"] for b in bodies})

        async def existing(uuid: str) -> builtins.list[Notification]:
            return await self.list(uuid).to_list()

        before = await gather(existing, watched, concurrency=concurrency)
        if not before.ok:  # without the "before", a lost add could not be told from an older one
            raise before.errors[0].exception

        async def add(body: dict[str, Any]) -> Notification:
            return await self._client._model("POST", ROOT, Notification, json=body)

        async def find_lost(
            index: int, sent_at: float, error: BaseException, claimed: set[Any]
        ) -> Notification | None:
            body = bodies[index]
            try:
                candidates = await self.list(body["associatedUuid"]).to_list()
            except Exception as exc:  # the lookup failed: the original error stays, with why
                error.add_note(f"reconciling this add failed: {type(exc).__name__}: {exc}")
                return None
            for candidate in reversed(candidates):  # oldest first
                if candidate.id not in claimed and _same(candidate, body):
                    return candidate
            return None

        return await gather_reconciled(
            add, given, bodies, find_lost=find_lost, identity=lambda notification: notification.id,
            claimed=[n.id for found in before.values for n in found], concurrency=concurrency,
            fail_fast=fail_fast, on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def delete_many(
        self,
        uuids: Iterable[str],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[str]:
        """Delete every subscription; one outcome (the uuid, deleted, or the exception) per uuid.

        A repeated delete of one that did happen answers 404, so each is first sent once
        (re-sent only when it provably never reached the server); if its answer was lost it
        is sent again with the usual retries, and a 404 then counts as deleted. A 404 on a
        first answer stays a :class:`~aioplatform.NotFound`."""
        if isinstance(uuids, (str, bytes)) or not isinstance(uuids, Iterable):
            raise TypeError(f"uuids must be an iterable of notification uuids, got {type(uuids).__name__}")
        items = builtins.list(uuids)
        for i, uuid in enumerate(items):  # every uuid checked before the first request
            segment(f"uuids[{i}]", uuid)
        paths = {uuid: _path(uuid) for uuid in items}
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)

        async def delete(uuid: str) -> str:
            await self._client._delete_once(paths[uuid])
            return uuid

        return await gather(
            delete, items, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
            on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip


def _same(found: Notification, body: Mapping[str, Any]) -> bool:
    event = str(body["event"])
    return (
        found.url == body["url"]
        and found.event.upper() == (event.upper() if event != "*" else "*")
        and found.persistent == bool(body.get("persistent", False))
    )
