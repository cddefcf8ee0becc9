"""Actors (Abaco): agavepy's 24 actors operations and its 5 alias ones, as coroutines,
plus ``send_many`` and ``wait_executions`` for many messages at once.

>>> actor = await agave.actors.add({"image": "abacosamples/wc", "name": "wc"})
>>> execution_id = await agave.actors.send_message(actor.id, "count these words")
>>> [done] = (await agave.actors.wait_executions(actor.id, [execution_id], deadline=60)).values
>>> await agave.actors.get_execution_result(actor.id, execution_id)   # the raw bytes

Abaco answers 200 for everything (creates included) with ``result`` null when there is
nothing to return. Field names may come camelCase or snake_case (a server setting):
the models read both.

**Nonces instead of a token.** Every call that a nonce can authorise (reads of an actor,
its executions and their logs and results, and sending messages) takes ``nonce=``: the
call then carries ``?x-nonce=<nonce>`` and no bearer token (the client's own token is
neither sent nor refreshed), as Abaco's nonce URLs are meant to be used by whoever holds
one. The nonce is kept out of errors and logs like a token.

**Order.** Abaco does not run one actor's executions in the order their messages came
(abaco#13): nothing here (or in the embedded service) promises an order.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ..core import defaults
from ..core.auth import Auth
from ..core.batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    ReportedOutcomes,
    answer_lost,
    backoff_pauses,
    check_batch_options,
    gather,
    poll_many,
)
from ..core.calls import CallTimeout
from ..core.checks import check_choice, check_ids, check_seconds
from ..core.paging import AsyncPager
from ..core.paths import segment
from .errors import ExecutionWaitTimeout, MessageOutcomeUnknown
from .models.actors import (
    Actor,
    ActorMessages,
    ActorPermissions,
    ActorState,
    Alias,
    Execution,
    ExecutionLogs,
    ExecutionsSummary,
    MessageReceipt,
    Nonce,
    Worker,
)
from .models.common import structure

if TYPE_CHECKING:
    from .client import AgaveClient

__all__ = ["Actors"]

ROOT = "actors/v2"
PAGE_SIZE = 100
LEVELS = frozenset({"NONE", "READ", "EXECUTE", "UPDATE"})
NONCE_LEVELS = frozenset({"READ", "EXECUTE"})
_RESERVED_ENV = frozenset({"x-nonce", "_abaco_synchronous", "limit", "offset"})


class _NonceAuth(Auth):
    """No header: the nonce travels as ``?x-nonce=``; listed as a secret so the session
    scrubs it from URLs, errors and logs."""

    def __init__(self, nonce: str):
        self._nonce = nonce

    def apply(self, headers: MutableMapping[str, str]) -> None:
        return None

    def secrets(self) -> Iterable[str]:
        return (self._nonce,)

    def __repr__(self) -> str:
        return "_NonceAuth(***)"


def _actor_path(actor_id: Any, *rest: str) -> str:
    return "/".join((ROOT, segment("actor_id", actor_id), *rest))


def _string(name: str, value: Any) -> str:
    if value is not None and not isinstance(value, str):  # None: missing, a wrong value
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value is None:
        raise ValueError(f"{name} must be a non-empty string, got None")
    if not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _nonce_kwargs(nonce: Any, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The request options of a call made with ``nonce`` (or with the token when None)."""
    query = dict(params or {})
    if nonce is None:
        return {"params": query} if query else {}
    if not isinstance(nonce, str):
        raise TypeError(f"nonce must be a nonce id string, got {type(nonce).__name__}")
    if not nonce.strip() or any(c in nonce for c in "&#?/ "):
        raise ValueError("nonce must be a nonce id string (as add_nonce returns it)")
    query["x-nonce"] = nonce
    return {"params": query, "auth": _NonceAuth(nonce)}


def _environment(environment: Any) -> dict[str, str]:
    """An execution's extra environment, sent as query parameters (how Abaco reads it)."""
    if environment is None:
        return {}
    if not isinstance(environment, Mapping):
        raise TypeError(f"environment must be a mapping of names to values, got {type(environment).__name__}")
    out: dict[str, str] = {}
    for key, value in environment.items():
        if not isinstance(key, str) or not key or key.lower() in _RESERVED_ENV:
            raise ValueError(f"environment keys must be non-empty strings other than x-nonce, got {key!r}")
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            out[key] = str(value)
        else:
            raise TypeError(f"environment[{key!r}] must be a string or number, got {type(value).__name__}")
    return out


def _message_body(message: Any, name: str = "message") -> dict[str, Any]:
    """How one message goes out: raw bytes (``application/octet-stream``) or JSON
    ``{"message": ...}``; checked to be JSON-serialisable before anything is sent."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        data = bytes(message)
        if not data:
            raise ValueError(f"{name} must not be empty")
        return {"data": data, "headers": {"Content-Type": "application/octet-stream"}}
    if message is None:
        raise ValueError(f"{name} must be a string, bytes or a JSON value, got None")
    try:
        json.dumps(message)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a string, bytes or a JSON-serialisable value: {exc}") from None
    return {"json": {"message": message}}


def _actor_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise TypeError(f"body must be a mapping (an actor description), got {type(body).__name__}")
    _string("body['image']", body.get("image"))
    env = body.get("defaultEnvironment", body.get("default_environment"))
    if env is not None and not isinstance(env, Mapping):
        raise TypeError(f"body['defaultEnvironment'] must be a mapping, got {type(env).__name__}")
    return dict(body)


def _level(value: Any, allowed: frozenset[str] = LEVELS) -> str:
    return check_choice("level", value, sorted(allowed), any_case=True)


class Actors:
    """``client.actors``: agavepy's actors operations (snake_case)."""

    def __init__(self, client: AgaveClient):
        self._client = client

    async def _models(self, path: str, cls: type[Any]) -> builtins.list[Any]:
        """A listing Abaco answers whole (no ``limit``/``offset``): workers, nonces, aliases."""
        response = await self._client._request("GET", path)
        try:
            body = response.json()
            rows = body.get("result") if isinstance(body, dict) and "version" in body else body
            if rows is None:
                return []
            if not isinstance(rows, list):
                raise TypeError(f"expected a list, got {type(rows).__name__}")
            return [structure(row, cls) for row in rows]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise response.error(f"unexpected answer for a list of {cls.__name__}: {exc}") from None

    # -- actors ------------------------------------------------------------------------------

    def list(self, *, limit: int = PAGE_SIZE, offset: int = 0) -> AsyncPager[Actor]:
        """The actors you own or that are shared with you."""
        return self._client._list(ROOT, Actor, limit=limit, offset=offset)

    async def add(self, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> Actor:
        """Register an actor (``{"image": ..., "name", "stateless", "defaultEnvironment", ...}``);
        it starts ``SUBMITTED`` and becomes ``READY`` once its workers are up. Not re-sent
        after it may have reached the server (it would register a second actor)."""
        return await self._client._model("POST", ROOT, Actor, json=_actor_request(body))

    create = add

    async def get(self, actor_id: str, *, nonce: str | None = None, timeout: CallTimeout = None) -> Actor:
        return await self._client._model("GET", _actor_path(actor_id), Actor, **_nonce_kwargs(nonce))

    async def update(self, actor_id: str, body: Mapping[str, Any], *, timeout: CallTimeout = None) -> Actor:
        """Replace the actor's description (``image`` required; a new image resets it to SUBMITTED)."""
        return await self._client._model("PUT", _actor_path(actor_id), Actor, json=_actor_request(body))

    async def delete(self, actor_id: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", _actor_path(actor_id))

    # -- messages ------------------------------------------------------------------------------

    async def get_messages(
        self, actor_id: str, *, nonce: str | None = None, timeout: CallTimeout = None
    ) -> ActorMessages:
        """How many messages wait in the actor's mailbox."""
        return await self._client._model(
            "GET", _actor_path(actor_id, "messages"), ActorMessages, **_nonce_kwargs(nonce)
        )

    async def delete_messages(self, actor_id: str, *, timeout: CallTimeout = None) -> None:
        """Purge the actor's mailbox (messages not yet started are dropped)."""
        await self._client._call("DELETE", _actor_path(actor_id, "messages"))

    async def post_message(
        self,
        actor_id: str,
        message: Any,
        *,
        environment: Mapping[str, Any] | None = None,
        nonce: str | None = None,
        timeout: CallTimeout = None,
    ) -> MessageReceipt:
        """Send one message and return the whole receipt (execution id and ``msg``).

        ``message``: a string or any JSON value (sent as ``{"message": ...}``), or bytes
        (sent raw as ``application/octet-stream``; Abaco answers ``msg: "binary -
        omitted"``). ``environment`` becomes extra environment variables of the execution
        (sent as query parameters, which is how Abaco reads them). Never re-sent once it
        may have reached the server: that would run the message twice."""
        path = _actor_path(actor_id, "messages")
        body = _message_body(message)
        options = _nonce_kwargs(nonce, _environment(environment))
        return await self._client._model("POST", path, MessageReceipt, **body, **options)

    async def send_message(
        self,
        actor_id: str,
        message: Any,
        *,
        environment: Mapping[str, Any] | None = None,
        nonce: str | None = None,
        timeout: CallTimeout = None,
    ) -> str:
        """Send one message; the id of the execution it started (see :meth:`post_message`)."""
        receipt = await self.post_message(actor_id, message, environment=environment, nonce=nonce)
        if not receipt.execution_id:
            raise ValueError("Abaco answered the message without an executionId")
        return receipt.execution_id

    async def send_binary_message(
        self,
        actor_id: str,
        message: bytes,
        *,
        environment: Mapping[str, Any] | None = None,
        nonce: str | None = None,
        timeout: CallTimeout = None,
    ) -> str:
        """Send raw bytes (``application/octet-stream``); the execution id."""
        if not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError(f"message must be bytes, got {type(message).__name__}")
        return await self.send_message(actor_id, message, environment=environment, nonce=nonce)

    # -- state and permissions ------------------------------------------------------------------

    async def get_state(
        self, actor_id: str, *, nonce: str | None = None, timeout: CallTimeout = None
    ) -> ActorState:
        return await self._client._model(
            "GET", _actor_path(actor_id, "state"), ActorState, **_nonce_kwargs(nonce)
        )

    async def update_state(self, actor_id: str, state: Any, *, timeout: CallTimeout = None) -> Actor:
        """Set a stateful actor's state (any JSON value; a stateless actor is a 404).
        Safe to repeat, so re-sent like a PUT."""
        try:
            json.dumps(state)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"state must be JSON-serialisable: {exc}") from None
        return await self._client._model(
            "POST", _actor_path(actor_id, "state"), Actor, json=state, idempotent=True
        )

    async def get_permissions(self, actor_id: str, *, timeout: CallTimeout = None) -> ActorPermissions:
        return await self._client._model("GET", _actor_path(actor_id, "permissions"), ActorPermissions)

    async def update_permissions(
        self, actor_id: str, user: str, level: str, *, timeout: CallTimeout = None
    ) -> ActorPermissions:
        """Give ``user`` the ``level`` NONE, READ, EXECUTE or UPDATE (NONE revokes);
        the permissions as updated. Safe to repeat."""
        body = {"user": segment("user", user), "level": _level(level)}
        return await self._client._model(
            "POST", _actor_path(actor_id, "permissions"), ActorPermissions, json=body, idempotent=True
        )

    # -- workers ---------------------------------------------------------------------------

    async def list_workers(self, actor_id: str, *, timeout: CallTimeout = None) -> builtins.list[Worker]:
        return await self._models(_actor_path(actor_id, "workers"), Worker)

    async def add_worker(self, actor_id: str, num: int = 1, *, timeout: CallTimeout = None) -> None:
        """Ask for ``num`` more workers (Abaco answers null and schedules them)."""
        if not isinstance(num, int) or isinstance(num, bool):
            raise TypeError(f"num must be an integer, got {type(num).__name__}")
        if num < 1:
            raise ValueError(f"num must be an integer >= 1, got {num!r}")
        await self._client._call("POST", _actor_path(actor_id, "workers"), json={"num": num})

    async def get_worker(self, actor_id: str, worker_id: str, *, timeout: CallTimeout = None) -> Worker:
        path = _actor_path(actor_id, "workers", segment("worker_id", worker_id))
        return await self._client._model("GET", path, Worker)

    async def delete_worker(self, actor_id: str, worker_id: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", _actor_path(actor_id, "workers", segment("worker_id", worker_id)))

    # -- nonces ----------------------------------------------------------------------------

    async def list_nonces(self, actor_id: str, *, timeout: CallTimeout = None) -> builtins.list[Nonce]:
        return await self._models(_actor_path(actor_id, "nonces"), Nonce)

    async def add_nonce(
        self,
        actor_id: str,
        *,
        level: str = "EXECUTE",
        max_uses: int = -1,
        description: str | None = None,
        timeout: CallTimeout = None,
    ) -> Nonce:
        """A nonce for the actor: ``level`` READ (reads) or EXECUTE (reads and messages),
        good for ``max_uses`` calls (-1: unlimited). Its ``id`` is the secret to pass as
        ``nonce=``."""
        if not isinstance(max_uses, int) or isinstance(max_uses, bool):
            raise TypeError(f"max_uses must be an integer, got {type(max_uses).__name__}")
        if max_uses < 1 and max_uses != -1:
            raise ValueError(f"max_uses must be a positive integer or -1 (unlimited), got {max_uses!r}")
        body: dict[str, Any] = {"level": _level(level, NONCE_LEVELS), "maxUses": max_uses}
        if description is not None:
            body["description"] = _string("description", description)
        return await self._client._model("POST", _actor_path(actor_id, "nonces"), Nonce, json=body)

    async def get_nonce(self, actor_id: str, nonce_id: str, *, timeout: CallTimeout = None) -> Nonce:
        path = _actor_path(actor_id, "nonces", segment("nonce_id", nonce_id))
        return await self._client._model("GET", path, Nonce)

    async def delete_nonce(self, actor_id: str, nonce_id: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", _actor_path(actor_id, "nonces", segment("nonce_id", nonce_id)))

    # -- executions ------------------------------------------------------------------------

    async def list_executions(
        self,
        actor_id: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
        nonce: str | None = None,
        timeout: CallTimeout = None,
    ) -> ExecutionsSummary:
        """The actor's executions and totals (in no promised order). ``limit``/``offset``
        are sent only when given (agavepy declares them; Abaco 1.5 answers all)."""
        params: dict[str, str] = {}
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
                if value < 0:
                    raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
                params[name] = str(value)
        return await self._client._model(
            "GET", _actor_path(actor_id, "executions"), ExecutionsSummary, **_nonce_kwargs(nonce, params)
        )

    async def get_execution(
        self, actor_id: str, execution_id: str, *, nonce: str | None = None, timeout: CallTimeout = None
    ) -> Execution:
        path = _actor_path(actor_id, "executions", segment("execution_id", execution_id))
        return await self._client._model("GET", path, Execution, **_nonce_kwargs(nonce))

    async def get_execution_logs(
        self, actor_id: str, execution_id: str, *, nonce: str | None = None, timeout: CallTimeout = None
    ) -> ExecutionLogs:
        path = _actor_path(actor_id, "executions", segment("execution_id", execution_id), "logs")
        return await self._client._model("GET", path, ExecutionLogs, **_nonce_kwargs(nonce))

    async def get_execution_result(
        self, actor_id: str, execution_id: str, *, nonce: str | None = None, timeout: CallTimeout = None
    ) -> bytes:
        """The execution's result: raw bytes as the actor wrote them (not enveloped; empty
        when it wrote none)."""
        path = _actor_path(actor_id, "executions", segment("execution_id", execution_id), "results")
        chunks: list[bytes] = []
        async with self._client._stream("GET", path, **_nonce_kwargs(nonce)) as response:
            async for chunk in response.iter_chunks(256 * 1024):
                chunks.append(chunk)
        return b"".join(chunks)

    get_one_execution_result = get_execution_result

    # -- aliases ---------------------------------------------------------------------------

    async def list_aliases(self, *, timeout: CallTimeout = None) -> builtins.list[Alias]:
        return await self._models(f"{ROOT}/aliases", Alias)

    async def add_alias(self, alias: str, actor_id: str, *, timeout: CallTimeout = None) -> Alias:
        """Name an actor: ``alias`` then works in place of its id in every actor path."""
        body = {"alias": segment("alias", alias), "actorId": segment("actor_id", actor_id)}
        return await self._client._model("POST", f"{ROOT}/aliases", Alias, json=body)

    async def get_alias(self, alias: str, *, timeout: CallTimeout = None) -> Alias:
        return await self._client._model("GET", f"{ROOT}/aliases/{segment('alias', alias)}", Alias)

    async def delete_alias(self, alias: str, *, timeout: CallTimeout = None) -> None:
        await self._client._call("DELETE", f"{ROOT}/aliases/{segment('alias', alias)}")

    # -- batches ---------------------------------------------------------------------------

    async def send_many(
        self,
        actor_id: str,
        messages: Iterable[Any],
        *,
        environment: Mapping[str, Any] | None = None,
        nonce: str | None = None,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[str]:
        """Send every message; one outcome per message, in input order: the execution id,
        or the exception.

        Every message is checked before the first is sent. A POST is retried only when
        the server provably did not take it (429, 503, connection refused). A message
        whose answer was lost after sending (dropped connection, timeout, a 5xx other
        than 503) may or may not have started an execution, and Abaco keeps no message
        content to find it by, so it is never re-sent: its outcome is a
        :class:`~aioplatform.agave.errors.MessageOutcomeUnknown` whose ``orphans`` name
        the executions that appeared during the batch and that no outcome holds (from one
        listing before and one after the batch). Empty ``orphans`` prove that none of
        the lost messages ran: they can be sent again. With ``nonce=``, those two
        listings are nonce calls too and spend two of its uses. ``on_outcome`` and
        ``breaker`` are :func:`~aioplatform.gather`'s (a lost answer is reported once its
        ``MessageOutcomeUnknown`` is built).
        """
        segment("actor_id", actor_id)
        if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable):
            raise TypeError(f"messages must be an iterable of messages, got {type(messages).__name__}")
        items = list(messages)
        for i, message in enumerate(items):
            _message_body(message, f"messages[{i}]")
        env = _environment(environment)
        _nonce_kwargs(nonce)
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)
        reported = ReportedOutcomes(on_outcome, items, hold=answer_lost)
        before = await self._execution_ids(actor_id, nonce)

        async def send(message: Any) -> str:
            return await self.send_message(actor_id, message, environment=env, nonce=nonce)

        result = await gather(
            send, items, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
            on_outcome=reported, breaker=breaker,
        )  # fmt: skip
        lost = [e.index for e in result.errors if answer_lost(e.exception)]
        if not lost:
            return result
        after = await self._execution_ids(actor_id, nonce) if before is not None else None
        orphans = (
            None if after is None or before is None else tuple(sorted(after - before - set(result.values)))
        )
        outcomes = list(result.outcomes)
        for index in lost:
            cause = outcomes[index]
            assert isinstance(cause, BaseException)
            unknown = MessageOutcomeUnknown(actor_id, cause, orphans)
            unknown.__cause__ = cause
            outcomes[index] = unknown
        final: BatchResult[str] = BatchResult(
            list(items), outcomes, {e.index for e in result.errors}, stopped=result.stopped
        )
        return await reported.release(final)

    async def _execution_ids(self, actor_id: str, nonce: str | None) -> set[str] | None:
        try:
            summary = await self.list_executions(actor_id, nonce=nonce)
        except Exception:  # the orphans are then unknown (None), the batch still runs
            return None
        return set(summary.ids)

    async def wait_executions(
        self,
        actor_id: str,
        execution_ids: Iterable[str],
        *,
        deadline: float | None = None,
        poll_interval: float = 0.5,
        max_interval: float = 10.0,
        concurrency: int = defaults.CONCURRENCY,
        nonce: str | None = None,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[Execution]:
        """Wait until every execution is COMPLETE or ERROR; one outcome per id, in order:
        the final :class:`Execution`, the error if polling it failed, or
        :class:`~aioplatform.agave.errors.ExecutionWaitTimeout` (with the last status seen)
        if ``deadline`` seconds passed first. Executions are polled in rounds (at most
        ``concurrency`` at once), the pause growing from ``poll_interval`` to
        ``max_interval`` with jitter. Never hangs; assumes no order among executions. With
        ``nonce=`` every poll is a nonce call and spends one of its uses. ``on_outcome``
        hears each execution as it settles; a ``breaker`` tripped by a round's polls
        settles every execution that round did not poll as ``NotAttempted``."""
        segment("actor_id", actor_id)
        ids = check_ids("execution_ids", execution_ids)
        interval = check_seconds("poll_interval", poll_interval, positive=False)
        cap = check_seconds("max_interval", max_interval, positive=False)
        limit = check_seconds("deadline", deadline, allow_none=True, positive=False)
        assert interval is not None and cap is not None
        if interval <= 0 or cap < interval:
            raise ValueError(
                f"poll_interval must be > 0 and <= max_interval, got {poll_interval!r} and {max_interval!r}"
            )
        check_batch_options(concurrency, on_progress, on_outcome, breaker)
        _nonce_kwargs(nonce)
        async def poll(execution_id: str) -> Execution:
            return await self.get_execution(actor_id, execution_id, nonce=nonce)

        return await poll_many(
            poll,
            ids,
            done=lambda seen: seen.finished,
            timeout_error=lambda execution_id, seen: ExecutionWaitTimeout(
                actor_id, execution_id, seen.status if seen else None, limit or 0.0, seen
            ),
            pauses=backoff_pauses(interval, cap),
            deadline=limit,
            concurrency=concurrency,
            on_progress=on_progress,
            on_outcome=on_outcome,
            breaker=breaker,
        )
