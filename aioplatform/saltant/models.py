"""saltant models: attrs classes with saltant-py's fields and its model methods, as coroutines.

Each model keeps a reference to the manager that made it, so ``await instance.clone()``,
``await queue.patch()`` and ``await task_type.sync()`` work as in saltant-py. The
models are mutable (``attrs.define``) because saltant-py's ``sync()``,
``wait_until_finished()`` and ``put()`` flows update an object in place; equality
compares the wire fields only.

A task instance's ``wait_until_finished(timeout=)`` is how long to wait in all (as in
saltant-py), not the per-call deadline every other method's ``timeout=`` is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import attrs
import cattrs

from ..core.calls import CallTimeout, per_call_options
from ..core.serde import make_converter

__all__ = [
    "ContainerTaskInstance",
    "ContainerTaskType",
    "ExecutableTaskInstance",
    "ExecutableTaskType",
    "TaskInstance",
    "TaskQueue",
    "TaskType",
    "TaskWhitelist",
    "User",
    "TASK_INSTANCE_FINISH_STATUSES",
    "TASK_INSTANCE_STATES",
    "converter",
]

TASK_INSTANCE_STATES = ("created", "published", "running", "successful", "failed", "terminated")
TASK_INSTANCE_FINISH_STATUSES = ("successful", "failed", "terminated")

converter: cattrs.Converter = make_converter()

M = TypeVar("M", bound="Model")


@attrs.define
class Model:
    """Base of every saltant model: the manager it came from, and in-place refresh."""

    _manager: Any = attrs.field(default=None, repr=False, eq=False, kw_only=True, alias="manager")

    @property
    def manager(self) -> Any:
        """The manager (of the client) that produced this object."""
        if self._manager is None:
            raise RuntimeError(f"this {type(self).__name__} is not bound to a client's manager")
        return self._manager

    def _update_from(self: M, other: M) -> M:
        for field in attrs.fields(type(self)):
            if field.name != "_manager":
                setattr(self, field.name, getattr(other, field.name))
        return self


@attrs.define
class User(Model):
    """A saltant user (``users/``)."""

    username: str
    email: str = ""

    async def sync(self, *, timeout: CallTimeout = None) -> User:
        """Refresh this user from the server (in place) and return it."""
        return self._update_from(await self.manager.get(self.username))

    def __str__(self) -> str:
        return self.username


TT = TypeVar("TT", bound="TaskType")


@attrs.define
class TaskType(Model):
    """Fields common to container and executable task types."""

    id: int
    name: str
    description: str = ""
    user: str | None = None
    datetime_created: dt.datetime | None = None
    command_to_run: str = ""
    environment_variables: list[str] = attrs.Factory(list)
    required_arguments: list[str] = attrs.Factory(list)
    required_arguments_default_values: dict[str, Any] = attrs.Factory(dict)

    async def sync(self: TT, *, timeout: CallTimeout = None) -> TT:
        """Refresh this task type from the server (in place) and return it."""
        return self._update_from(await self.manager.get(id=self.id))

    def __str__(self) -> str:
        return self.name


@attrs.define
class ContainerTaskType(TaskType):
    """A container task type (``containertasktypes/``)."""

    logs_path: str | None = None
    results_path: str | None = None
    container_image: str = ""
    container_type: str = "docker"

    async def put(self, *, timeout: CallTimeout = None) -> ContainerTaskType:
        """Send every field of this task type to the server (a full update); returns the result."""
        updated: ContainerTaskType = await self.manager.put(
            id=self.id,
            name=self.name,
            description=self.description,
            command_to_run=self.command_to_run,
            environment_variables=self.environment_variables,
            required_arguments=self.required_arguments,
            required_arguments_default_values=self.required_arguments_default_values,
            logs_path=self.logs_path,
            results_path=self.results_path,
            container_image=self.container_image,
            container_type=self.container_type,
        )
        return updated


@attrs.define
class ExecutableTaskType(TaskType):
    """An executable task type (``executabletasktypes/``)."""

    json_file_option: str | None = None

    async def put(self, *, timeout: CallTimeout = None) -> ExecutableTaskType:
        """Send every field of this task type to the server (a full update); returns the result."""
        updated: ExecutableTaskType = await self.manager.put(
            id=self.id,
            name=self.name,
            description=self.description,
            command_to_run=self.command_to_run,
            environment_variables=self.environment_variables,
            required_arguments=self.required_arguments,
            required_arguments_default_values=self.required_arguments_default_values,
            json_file_option=self.json_file_option,
        )
        return updated


TI = TypeVar("TI", bound="TaskInstance")


@attrs.define
class TaskInstance(Model):
    """A task instance (container or executable; both have the same fields)."""

    uuid: str
    name: str = ""
    state: str = "created"
    user: str | None = None
    task_queue: int | None = None
    task_type: int | None = None
    datetime_created: dt.datetime | None = None
    datetime_finished: dt.datetime | None = None
    arguments: dict[str, Any] = attrs.Factory(dict)

    @property
    def finished(self) -> bool:
        """True in a terminal state (successful, failed, terminated)."""
        return self.state in TASK_INSTANCE_FINISH_STATUSES

    async def sync(self: TI, *, timeout: CallTimeout = None) -> TI:
        """Refresh this instance from the server (in place) and return it."""
        return self._update_from(await self.manager.get(self.uuid))

    async def clone(self: TI, *, reconcile: bool = False, timeout: CallTimeout = None) -> TI:
        """Clone this instance on the server; returns the NEW instance (see the manager's method)."""
        clone: TI = await self.manager.clone(self.uuid, reconcile=reconcile)
        return clone

    async def terminate(self: TI, *, timeout: CallTimeout = None) -> TI:
        """Ask the server to terminate this instance; returns the instance as the server answered."""
        answer: TI = await self.manager.terminate(self.uuid)
        return answer

    async def wait_until_finished(self: TI, refresh_period: float = 5, timeout: float | None = None) -> TI:
        """Poll until this instance is finished (updating it in place); see the manager's method."""
        final = await self.manager.wait_until_finished(
            self.uuid, refresh_period=refresh_period, timeout=timeout
        )
        return self._update_from(final)

    def __str__(self) -> str:
        return self.uuid


@attrs.define
class ContainerTaskInstance(TaskInstance):
    """An instance of a container task type (``containertaskinstances/``)."""


@attrs.define
class ExecutableTaskInstance(TaskInstance):
    """An instance of an executable task type (``executabletaskinstances/``)."""


@attrs.define
class TaskQueue(Model):
    """A task queue (``taskqueues/``)."""

    id: int
    name: str
    user: str | None = None
    description: str = ""
    private: bool = False
    runs_executable_tasks: bool = True
    runs_docker_container_tasks: bool = True
    runs_singularity_container_tasks: bool = True
    active: bool = True
    whitelists: list[int] = attrs.Factory(list)

    async def sync(self, *, timeout: CallTimeout = None) -> TaskQueue:
        """Refresh this queue from the server (in place) and return it."""
        return self._update_from(await self.manager.get(id=self.id))

    async def put(self, *, timeout: CallTimeout = None) -> TaskQueue:
        """Send every field of this queue to the server; returns the updated queue."""
        updated: TaskQueue = await self.manager.put(
            id=self.id,
            name=self.name,
            description=self.description,
            private=self.private,
            runs_executable_tasks=self.runs_executable_tasks,
            runs_docker_container_tasks=self.runs_docker_container_tasks,
            runs_singularity_container_tasks=self.runs_singularity_container_tasks,
            active=self.active,
            whitelists=self.whitelists,
        )
        return updated

    async def patch(self, *, timeout: CallTimeout = None) -> TaskQueue:
        """saltant-py's alias of :meth:`put` (both send every field)."""
        return await self.put()

    def __str__(self) -> str:
        return self.name


@attrs.define
class TaskWhitelist(Model):
    """A task whitelist (``taskwhitelists/``)."""

    id: int
    name: str
    user: str | None = None
    description: str = ""
    whitelisted_container_task_types: list[int] = attrs.Factory(list)
    whitelisted_executable_task_types: list[int] = attrs.Factory(list)

    async def sync(self, *, timeout: CallTimeout = None) -> TaskWhitelist:
        """Refresh this whitelist from the server (in place) and return it."""
        return self._update_from(await self.manager.get(id=self.id))

    async def put(self, *, timeout: CallTimeout = None) -> TaskWhitelist:
        """Send every field of this whitelist to the server; returns the updated whitelist."""
        updated: TaskWhitelist = await self.manager.put(
            id=self.id,
            name=self.name,
            description=self.description,
            whitelisted_container_task_types=self.whitelisted_container_task_types,
            whitelisted_executable_task_types=self.whitelisted_executable_task_types,
        )
        return updated

    async def patch(self, *, timeout: CallTimeout = None) -> TaskWhitelist:
        """saltant-py's alias of :meth:`put` (both send every field)."""
        return await self.put()

    def __str__(self) -> str:
        return self.name


# saltant-py's model methods (instance.sync(), .put(), .clone() ...) take timeout= too, as
# every service call does (aioplatform.core.calls); applied once attrs has built the classes.
for _model in (
    User, ContainerTaskType, ExecutableTaskType, ContainerTaskInstance, ExecutableTaskInstance, TaskQueue,
    TaskWhitelist,
):  # fmt: skip
    per_call_options(_model)
del _model
