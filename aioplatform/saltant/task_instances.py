"""Task instances: create, get, list, clone, terminate, wait — one at a time or in batches.

Batches run on the client's shared pool with bounded concurrency and return a
:class:`~aioplatform.BatchResult` (exactly one outcome per input, in input order).
Clone and terminate are POSTs: the core retries them only when the server provably
did not process them (429/503, connection refused), so a batch never clones twice.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from ..core import defaults
from ..core.batch import BatchResult, ProgressCallback, gather
from .errors import WaitTimeout
from .models import (
    TASK_INSTANCE_FINISH_STATUSES,
    ContainerTaskInstance,
    ExecutableTaskInstance,
    TaskInstance,
)
from .resources import Resource, segment

__all__ = ["ContainerTaskInstanceManager", "ExecutableTaskInstanceManager", "TaskInstanceManager"]

TI = TypeVar("TI", bound=TaskInstance)

DEFAULT_REFRESH_PERIOD = 5.0  # saltant-py's DEFAULT_TASK_INSTANCE_WAIT_REFRESH_PERIOD
_SPEC_KEYS = frozenset({"task_type_id", "task_queue_id", "arguments", "name"})


def _uuid(value: Any, name: str = "uuid") -> str:
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
    if (
        isinstance(refresh_period, bool)
        or not isinstance(refresh_period, (int, float))
        or refresh_period <= 0
    ):
        raise ValueError(f"refresh_period must be a positive number of seconds, got {refresh_period!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
    ):
        raise ValueError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")


class TaskInstanceManager(Resource[TI], Generic[TI]):
    """Operations on one class of task instances (container or executable)."""

    async def get(self, uuid: str) -> TI:
        """The task instance with this UUID."""
        return await self._get(_uuid(uuid))

    async def create(
        self,
        task_type_id: int,
        task_queue_id: int,
        arguments: Mapping[str, Any] | None = None,
        name: str = "",
    ) -> TI:
        """Create (submit) a task instance; the server fills missing arguments from the defaults."""
        body = self._create_body(task_type_id, task_queue_id, arguments, name)
        return await self._send("POST", self.path, body)

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

    async def clone(self, uuid: str) -> TI:
        """Clone the instance: a NEW instance with the same type, queue, name and arguments."""
        response = await self._client._request("POST", f"{self.path}{segment('uuid', _uuid(uuid))}/clone/")
        return self.response_data_to_model_instance(response.json())

    async def terminate(self, uuid: str) -> TI:
        """Ask the server to terminate the instance (202). It answers with the instance as stored,
        usually still in its old state; a finished instance is left unchanged."""
        response = await self._client._request(
            "POST", f"{self.path}{segment('uuid', _uuid(uuid))}/terminate/"
        )
        return self.response_data_to_model_instance(response.json())

    async def clone_many(
        self,
        uuids: Iterable[str],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> BatchResult[TI]:
        """Clone every instance; one outcome (the new instance, or the exception) per UUID."""
        return await gather(
            self.clone, _uuids(uuids), concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress
        )

    async def terminate_many(
        self,
        uuids: Iterable[str],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> BatchResult[TI]:
        """Terminate every instance; one outcome per UUID, in input order."""
        return await gather(
            self.terminate,
            _uuids(uuids),
            concurrency=concurrency,
            fail_fast=fail_fast,
            on_progress=on_progress,
        )

    async def create_many(
        self,
        specs: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = defaults.CONCURRENCY,
        fail_fast: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> BatchResult[TI]:
        """Create one instance per spec: a mapping of :meth:`create`'s arguments.

        >>> specs = [{"task_type_id": 1, "task_queue_id": 2, "arguments": {"n": i}} for i in range(1000)]
        >>> result = await client.container_task_instances.create_many(specs, concurrency=50)

        Every spec is checked before the first request (``ValueError``/``TypeError`` naming it).
        """
        if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Iterable):
            raise TypeError(f"specs must be an iterable of mappings, got {type(specs).__name__}")
        bodies = []
        for i, spec in enumerate(specs):
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

        async def create(body: dict[str, Any]) -> TI:
            return await self._send("POST", self.path, body)

        return await gather(
            create, bodies, concurrency=concurrency, fail_fast=fail_fast, on_progress=on_progress
        )

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
    ) -> BatchResult[TI]:
        """Wait for many instances at once; one outcome per UUID: the finished instance or the error.

        Polls in rounds: each round GETs the still-unfinished instances (each UUID once,
        at most ``concurrency`` requests in flight), then sleeps ``refresh_period``.
        An instance still unfinished after ``timeout`` seconds gets a
        :class:`~aioplatform.saltant.WaitTimeout` outcome with its last state.
        """
        ids = _uuids(uuids)
        _check_period(refresh_period, timeout)
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        positions: dict[str, list[int]] = {}
        for i, u in enumerate(ids):
            positions.setdefault(u, []).append(i)
        outcomes: list[Any] = [None] * len(ids)
        failed: set[int] = set()
        last: dict[str, TI] = {}
        done = 0

        async def settle(u: str, outcome: Any, error: bool) -> None:
            nonlocal done
            for i in positions[u]:
                outcomes[i] = outcome
                if error:
                    failed.add(i)
                done += 1
                if on_progress is not None:
                    maybe = on_progress(done, len(ids), outcome)
                    if inspect.isawaitable(maybe):
                        await maybe

        pending = list(positions)
        while pending:
            polled = await gather(self.get, pending, concurrency=concurrency)
            still: list[str] = []
            for u, outcome in zip(pending, polled.outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    await settle(u, outcome, True)
                elif outcome.state in TASK_INSTANCE_FINISH_STATUSES:
                    await settle(u, outcome, False)
                else:
                    last[u] = outcome
                    still.append(u)
            pending = still
            if not pending:
                break
            delay = float(refresh_period)
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    for u in pending:
                        await settle(u, WaitTimeout(u, last.get(u), float(timeout or 0)), True)
                    break
                delay = min(delay, remaining)
            await asyncio.sleep(delay)
        return BatchResult(list(ids), outcomes, failed)


class ContainerTaskInstanceManager(TaskInstanceManager[ContainerTaskInstance]):
    """``client.container_task_instances``."""

    path = "containertaskinstances/"
    model = ContainerTaskInstance


class ExecutableTaskInstanceManager(TaskInstanceManager[ExecutableTaskInstance]):
    """``client.executable_task_instances``."""

    path = "executabletaskinstances/"
    model = ExecutableTaskInstance
