"""Task instances: create, get, list, clone, terminate, wait — one at a time or in batches.

Batches run on the client's shared pool with bounded concurrency and return a
:class:`~aioplatform.BatchResult` (exactly one outcome per input, in input order).
Clone is a POST the core retries only when the server provably did not process it
(429/503, connection refused), so a batch never clones twice. Terminate is a POST too,
but terminating twice is harmless, so it is retried as an idempotent call.
A clone whose answer was lost (the request was sent, no answer came back) may or may
not exist; ``reconcile=True`` looks it up instead of reporting a failure (saltant has
no idempotency key, so the lookup matches on the clone's inputs and creation time).

``wait_until_finished(timeout=)`` and ``wait_many(timeout=)`` are how long to wait in all
(as in saltant-py), not the per-call deadline every other method's ``timeout=`` is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from ..core import defaults
from ..core.batch import (
    BatchResult,
    Breaker,
    OutcomeCallback,
    ProgressCallback,
    answer_lost,
    check_batch_options,
    fixed_pauses,
    gather,
    gather_prepared,
    poll_many,
)
from ..core.calls import CallTimeout
from ..core.checks import check_seconds
from ..core.paths import segment
from ..core.reconcile import CLOCK_SLACK, date_header_skew, gather_reconciled
from .errors import WaitTimeout
from .models import (
    TASK_INSTANCE_FINISH_STATUSES,
    ContainerTaskInstance,
    ExecutableTaskInstance,
    TaskInstance,
)
from .resources import Resource

__all__ = ["ContainerTaskInstanceManager", "ExecutableTaskInstanceManager", "TaskInstanceManager"]

TI = TypeVar("TI", bound=TaskInstance)

DEFAULT_REFRESH_PERIOD = 5.0  # saltant-py's DEFAULT_TASK_INSTANCE_WAIT_REFRESH_PERIOD
_SPEC_KEYS = frozenset({"task_type_id", "task_queue_id", "arguments", "name"})
# A UUID's canonical form (what str(uuid.UUID(...)) gives): passed through as it is.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid(value: Any, name: str = "uuid") -> str:
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):
        return value
    if isinstance(value, uuidlib.UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a UUID string, got {type(value).__name__}")
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise ValueError(f"{name} must be a UUID string, got {value!r}") from None


def _uuids(values: Iterable[Any]) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"uuids must be an iterable of UUID strings, got {type(values).__name__}")
    return [_uuid(v, f"uuids[{i}]") for i, v in enumerate(values)]


def _check_id(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer id, got {value!r}")
    return value


def _check_arguments(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping or None, got {type(value).__name__}")
    return dict(value)


def _check_period(refresh_period: Any, timeout: Any) -> None:
    check_seconds("refresh_period", refresh_period)
    check_seconds("timeout", timeout, allow_none=True, positive=False)


class TaskInstanceManager(Resource[TI], Generic[TI]):
    """Operations on one class of task instances (container or executable)."""

    filter_fields: ClassVar[Mapping[str, str]] = {
        "name": "char", "state": "char", "user__username": "char", "task_type": "fk",
        "task_queue": "fk", "datetime_created": "date", "datetime_finished": "date",
    }  # fmt: skip

    async def get(self, uuid: str, *, timeout: CallTimeout = None) -> TI:
        """The task instance with this UUID."""
        return await self._get(_uuid(uuid))

    async def create(
        self,
        task_type_id: int,
        task_queue_id: int,
        arguments: Mapping[str, Any] | None = None,
        name: str = "",
        *,
        timeout: CallTimeout = None,
    ) -> TI:
        """Create (submit) a task instance; the server fills missing arguments from the defaults."""
        body = self._create_body(task_type_id, task_queue_id, arguments, name)
        return await self._create(body)

    async def _create(self, body: dict[str, Any]) -> TI:
        created = await self._send("POST", self.path, body)
        self._client._learn_username(created.user)
        return created

    @staticmethod
    def _create_body(
        task_type_id: Any, task_queue_id: Any, arguments: Any, name: Any, where: str = ""
    ) -> dict[str, Any]:
        if not isinstance(name, str):
            raise TypeError(f"{where}name must be a string, got {type(name).__name__}")
        return {
            "name": name,
            "arguments": _check_arguments(f"{where}arguments", arguments),
            "task_type": _check_id(f"{where}task_type_id", task_type_id),
            "task_queue": _check_id(f"{where}task_queue_id", task_queue_id),
        }

    async def clone(self, uuid: str, *, reconcile: bool = False, timeout: CallTimeout = None) -> TI:
        """Clone the instance: a NEW instance with the same type, queue, name and arguments.

        With ``reconcile=True``, a clone whose answer was lost (connection dropped or
        timed out after sending, a 5xx other than 503) is looked up on the server: the
        clone is returned if it exists, else the original error is raised. It costs one
        listing request before the clone (the newest instance marks where to look from).
        """
        uuid = _uuid(uuid)
        mark = await self._high_water() if reconcile else None
        sent_at = time.time()
        try:
            return await self._post_clone(uuid)
        except Exception as exc:
            if not reconcile or not answer_lost(exc):
                raise
            found = await self._find_lost_clone(uuid, sent_at, exc, claimed={uuid}, mark=mark)
            if found is None:
                raise
            return found

    async def _post_clone(self, uuid: str) -> TI:
        response = await self._client._request("POST", f"{self.path}{segment('uuid', uuid)}/clone/")
        clone = self._model(response)
        self._client._remember_clone(clone.uuid, clone.user)
        return clone

    def _lookups(self) -> TaskInstanceManager[TI]:
        """This manager on a copy of the client whose GETs retry until their deadline: a
        reconciliation that gave up on a faulted look-up would report a made clone as failed."""
        return type(self)(self._client._for_lookups())

    async def _high_water(self) -> TI | None:
        """The newest instance before a reconciled clone is sent (task instances list newest
        first): only instances created after it can be that clone. None if there is none or
        the listing fails (the lookup then relies on the request's estimated server time)."""
        try:
            page = await self._lookups().list(page_size=1)
        except Exception:
            return None
        return page[0] if len(page) else None

    async def _find_lost_clone(
        self,
        original_uuid: str,
        sent_at: float,
        error: BaseException,
        claimed: set[str],
        mark: TI | None = None,
    ) -> TI | None:
        """The clone of ``original_uuid`` requested at ``sent_at`` (our clock) whose answer was lost.

        Candidates have the original's name, type, queue and arguments, were created by
        this client's user (when known) after ``mark`` (the newest instance before the
        request) and no earlier than the request's estimated server time, and are not an
        instance this client already holds (``claimed`` or any clone it was answered
        with). The oldest candidate is taken and claimed. None if there is none, or if
        the lookup itself fails (noted on ``error``): its GETs are retried until their
        deadline first, so only a server that stays unreachable that long leaves it unknown.
        """
        lookups = self._lookups()
        try:
            response = await lookups._client._request("GET", f"{self.path}{segment('uuid', original_uuid)}/")
            original = self._model(response)
            since = sent_at + (date_header_skew(response.headers) or 0.0) - CLOCK_SLACK
            older = ""  # the mark itself: rendered to the microsecond, it may compare equal
            if mark is not None and mark.datetime_created is not None:
                # The Date header's one-second resolution leaves room for instances made just
                # before the request (another run's identical clones): the mark closes it.
                since = max(since, mark.datetime_created.timestamp())
                older = mark.uuid
            filters: dict[str, Any] = {
                "task_type": original.task_type,
                "task_queue": original.task_queue,
                "datetime_created__gte": dt.datetime.fromtimestamp(since, tz=dt.timezone.utc),
            }
            if original.name:  # django-filter ignores an empty value
                filters["name"] = original.name
            user = self._client._username
            if user is not None:
                filters["user__username"] = user
            found: TI | None = None
            async for candidate in lookups.list(filters):  # newest first: the last match is the oldest
                if (
                    candidate.uuid in claimed
                    or candidate.uuid == older
                    or self._client._knows_clone(candidate.uuid)
                    or candidate.name != original.name
                    or candidate.arguments != original.arguments
                ):
                    continue
                found = candidate
        except Exception as lookup_error:  # the original failure is what is reported
            error.add_note(f"looking up the lost clone failed: {lookup_error}")
            return None
        if found is not None:
            claimed.add(found.uuid)
            self._client._remember_clone(found.uuid, found.user)
        return found

    async def terminate(self, uuid: str, *, timeout: CallTimeout = None) -> TI:
        """Ask the server to terminate the instance (202). It answers with the instance as stored,
        usually still in its old state; a finished instance is left unchanged.

        Terminating twice is harmless (the second answers 202 with the instance unchanged),
        so this POST is retried as an idempotent call: a dropped connection or a timeout,
        before or after the server acted, is sent again rather than reported as a failure.
        """
        response = await self._client._request(
            "POST", f"{self.path}{segment('uuid', _uuid(uuid))}/terminate/", idempotent=True
        )
        return self._model(response)

    async def clone_many(
        self,
        uuids: Iterable[str],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        reconcile: bool = False,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[TI]:
        """Clone every instance; one outcome (the new instance, or the exception) per UUID.

        With ``reconcile=True``, once every request is done, each clone whose answer was
        lost is looked up (one at a time, never claiming an instance another outcome
        holds): a found clone becomes that item's outcome, so the server holds exactly
        one clone per successful outcome and none for a failed one. One extra request
        before the batch notes the newest instance, so a clone made before the batch
        (by another run with the same inputs) is never taken for a lost one. ``on_progress``
        reports the requests as they finish, before any reconciliation; ``on_outcome``
        (see :func:`~aioplatform.gather`) hears a lost answer only once reconciled.
        ``breaker`` stops the batch early (:class:`~aioplatform.Breaker`).
        """
        ids = _uuids(uuids)
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast, reconcile)
        if not reconcile:
            return await gather(
                self._post_clone, ids, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
                on_outcome=on_outcome, breaker=breaker,
            )  # fmt: skip
        mark = await self._high_water()

        async def find_lost(index: int, sent_at: float, error: BaseException, claimed: set[Any]) -> TI | None:
            return await self._find_lost_clone(ids[index], sent_at, error, claimed, mark)

        return await gather_reconciled(
            self._post_clone, ids, ids, find_lost=find_lost, identity=lambda clone: clone.uuid,
            claimed=ids, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress,
            on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def terminate_many(
        self,
        uuids: Iterable[str],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[TI]:
        """Terminate every instance; one outcome per UUID, in input order.

        Each terminate is retried like a GET (see :meth:`terminate`), so under dropped
        connections every outcome is a success unless the server refused the item
        (404, permissions) or the retries ran out.
        """
        return await gather(
            self.terminate,
            _uuids(uuids),
            concurrency=concurrency,
            fail_fast=fail_fast,
            on_progress=on_progress,
            on_outcome=on_outcome,
            breaker=breaker,
        )

    async def create_many(
        self,
        specs: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
        timeout: CallTimeout = None,
    ) -> BatchResult[TI]:
        """Create one instance per spec: a mapping of :meth:`create`'s arguments.

        >>> specs = [{"task_type_id": 1, "task_queue_id": 2, "arguments": {"n": i}} for i in range(1000)]
        >>> result = await client.container_task_instances.create_many(specs, concurrency=50)

        Every spec is checked before the first request (``ValueError``/``TypeError`` naming it).
        ``result.items`` are the specs as given (the request bodies are built from them).
        """
        if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Iterable):
            raise TypeError(f"specs must be an iterable of mappings, got {type(specs).__name__}")
        check_batch_options(concurrency, on_progress, on_outcome, breaker, fail_fast)
        given = list(specs)
        bodies = []
        for i, spec in enumerate(given):
            where = f"specs[{i}]."
            if not isinstance(spec, Mapping):
                raise TypeError(f"specs[{i}] must be a mapping, got {type(spec).__name__}")
            unknown = set(spec) - _SPEC_KEYS
            if unknown:
                raise ValueError(
                    f"specs[{i}] has unknown keys {sorted(unknown)}; expected {sorted(_SPEC_KEYS)}"
                )
            for key in ("task_type_id", "task_queue_id"):
                if key not in spec:
                    raise ValueError(f"specs[{i}] is missing {key!r}")
            bodies.append(
                self._create_body(
                    spec["task_type_id"],
                    spec["task_queue_id"],
                    spec.get("arguments"),
                    spec.get("name", ""),
                    where,
                )
            )

        return await gather_prepared(
            self._create, given, bodies, concurrency=concurrency, fail_fast=fail_fast,
            on_progress=on_progress, on_outcome=on_outcome, breaker=breaker,
        )  # fmt: skip

    async def wait_until_finished(
        self, uuid: str, refresh_period: float = DEFAULT_REFRESH_PERIOD, timeout: float | None = None
    ) -> TI:
        """Poll every ``refresh_period`` seconds until the instance is finished; return it.

        Never blocks the event loop. With ``timeout`` (seconds), raises
        :class:`~aioplatform.saltant.WaitTimeout` carrying the last state seen.
        """
        uuid = _uuid(uuid)
        _check_period(refresh_period, timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            instance = await self.get(uuid)
            if instance.state in TASK_INSTANCE_FINISH_STATUSES:
                return instance
            delay = float(refresh_period)
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise WaitTimeout(uuid, instance, float(timeout or 0))
                delay = min(delay, remaining)
            await asyncio.sleep(delay)

    async def wait_many(
        self,
        uuids: Iterable[str],
        *,
        refresh_period: float = DEFAULT_REFRESH_PERIOD,
        timeout: float | None = None,
        concurrency: int = defaults.CONCURRENCY,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        breaker: Breaker | None = None,
    ) -> BatchResult[TI]:
        """Wait for many instances at once; one outcome per UUID: the finished instance or the error.

        Polls in rounds: each round GETs the still-unfinished instances (each UUID once,
        at most ``concurrency`` requests in flight), then sleeps ``refresh_period``.
        An instance still unfinished after ``timeout`` seconds gets a
        :class:`~aioplatform.saltant.WaitTimeout` outcome with its last state.
        ``on_outcome`` hears each instance as it settles; a ``breaker`` tripped by a
        round's polls settles every instance that round did not poll as ``NotAttempted``.
        """
        ids = _uuids(uuids)
        _check_period(refresh_period, timeout)
        check_batch_options(concurrency, on_progress, on_outcome, breaker)
        limit = float(timeout or 0)
        return await poll_many(
            self.get,
            ids,
            done=lambda instance: instance.state in TASK_INSTANCE_FINISH_STATUSES,
            timeout_error=lambda u, seen: WaitTimeout(u, seen, limit),
            pauses=fixed_pauses(refresh_period),
            deadline=timeout,
            concurrency=concurrency,
            on_progress=on_progress,
            on_outcome=on_outcome,
            breaker=breaker,
        )


class ContainerTaskInstanceManager(TaskInstanceManager[ContainerTaskInstance]):
    """``client.container_task_instances``."""

    path = "containertaskinstances/"
    model = ContainerTaskInstance


class ExecutableTaskInstanceManager(TaskInstanceManager[ExecutableTaskInstance]):
    """``client.executable_task_instances``."""

    path = "executabletaskinstances/"
    model = ExecutableTaskInstance
