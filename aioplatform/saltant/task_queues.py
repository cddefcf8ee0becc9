"""Task queues: list, get by id xor name, create, put, patch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..core.calls import CallTimeout
from ..core.paths import segment
from .models import TaskQueue
from .resources import Resource

__all__ = ["TaskQueueManager"]

_FLAGS = (
    "private",
    "runs_executable_tasks",
    "runs_docker_container_tasks",
    "runs_singularity_container_tasks",
    "active",
)


def _ids(name: str, value: Any) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of integer ids, got {type(value).__name__}")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name} must be a list of integer ids, got an item {v!r}")
    return list(value)


def _fields(values: dict[str, Any], *, skip_none: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in values.items():
        if value is None and skip_none:
            continue
        if key in ("name", "description") and not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__}")
        if key in _FLAGS and not isinstance(value, bool):
            raise TypeError(f"{key} must be a bool, got {type(value).__name__}")
        if key == "whitelists":
            value = _ids(key, value)
        body[key] = value
    return body


class TaskQueueManager(Resource[TaskQueue]):
    """``client.task_queues``."""

    filter_fields: ClassVar[Mapping[str, str]] = {
        "name": "char", "description": "char", "user__username": "char", "private": "bool",
        "runs_executable_tasks": "bool", "runs_docker_container_tasks": "bool",
        "runs_singularity_container_tasks": "bool", "active": "bool",
    }  # fmt: skip

    path = "taskqueues/"
    model = TaskQueue

    async def get(
        self, id: int | None = None, name: str | None = None, *, timeout: CallTimeout = None
    ) -> TaskQueue:
        """The queue with this id xor this name (``ValueError`` if both or neither)."""
        return await self._get_by_id_or_name(id, name)

    async def create(
        self,
        name: str,
        description: str = "",
        private: bool = False,
        runs_executable_tasks: bool = True,
        runs_docker_container_tasks: bool = True,
        runs_singularity_container_tasks: bool = True,
        active: bool = True,
        whitelists: Sequence[int] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> TaskQueue:
        """Create a task queue (owned by the caller)."""
        body = _fields(
            dict(
                name=name, description=description, private=private,
                runs_executable_tasks=runs_executable_tasks,
                runs_docker_container_tasks=runs_docker_container_tasks,
                runs_singularity_container_tasks=runs_singularity_container_tasks,
                active=active, whitelists=[] if whitelists is None else whitelists,
            ),
            skip_none=False,
        )  # fmt: skip
        return await self._send("POST", self.path, body)

    async def patch(
        self,
        id: int,
        name: str | None = None,
        description: str | None = None,
        private: bool | None = None,
        runs_executable_tasks: bool | None = None,
        runs_docker_container_tasks: bool | None = None,
        runs_singularity_container_tasks: bool | None = None,
        active: bool | None = None,
        whitelists: Sequence[int] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> TaskQueue:
        """Change only the fields given (not None); owner or superuser only."""
        body = _fields(
            dict(
                name=name, description=description, private=private,
                runs_executable_tasks=runs_executable_tasks,
                runs_docker_container_tasks=runs_docker_container_tasks,
                runs_singularity_container_tasks=runs_singularity_container_tasks,
                active=active, whitelists=whitelists,
            ),
            skip_none=True,
        )  # fmt: skip
        return await self._send("PATCH", f"{self.path}{segment('id', id)}/", body)

    async def put(
        self,
        id: int,
        name: str,
        description: str,
        private: bool,
        runs_executable_tasks: bool,
        runs_docker_container_tasks: bool,
        runs_singularity_container_tasks: bool,
        active: bool,
        whitelists: Sequence[int],
        *,
        timeout: CallTimeout = None,
    ) -> TaskQueue:
        """Replace every field of a queue; owner or superuser only."""
        body = _fields(
            dict(
                name=name, description=description, private=private,
                runs_executable_tasks=runs_executable_tasks,
                runs_docker_container_tasks=runs_docker_container_tasks,
                runs_singularity_container_tasks=runs_singularity_container_tasks,
                active=active, whitelists=whitelists,
            ),
            skip_none=False,
        )  # fmt: skip
        return await self._send("PUT", f"{self.path}{segment('id', id)}/", body)
