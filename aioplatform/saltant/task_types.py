"""Task types: container and executable (list, get by id xor name, create, put)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from ..core.calls import CallTimeout
from ..core.checks import check_choice
from ..core.paths import segment
from .models import ContainerTaskType, ExecutableTaskType, TaskType
from .resources import Resource

__all__ = ["ContainerTaskTypeManager", "ExecutableTaskTypeManager", "TaskTypeManager"]

TT = TypeVar("TT", bound=TaskType)


def _str(name: str, value: Any, *, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a string{' or None' if nullable else ''}, got {type(value).__name__}"
        )
    return value


def _list(name: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list or None, got {type(value).__name__}")
    return list(value)


def _dict(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping or None, got {type(value).__name__}")
    return dict(value)


def _extra(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping or None, got {type(value).__name__}")
    return dict(value)


class TaskTypeManager(Resource[TT], Generic[TT]):
    """What container and executable task types share."""

    async def get(self, id: int | None = None, name: str | None = None, *, timeout: CallTimeout = None) -> TT:
        """The task type with this id xor this name (``ValueError`` if both or neither)."""
        return await self._get_by_id_or_name(id, name)

    @staticmethod
    def _body(
        name: Any,
        description: Any,
        command_to_run: Any,
        environment_variables: Any,
        required_arguments: Any,
        required_arguments_default_values: Any,
    ) -> dict[str, Any]:
        return {
            "name": _str("name", name),
            "description": _str("description", description),
            "command_to_run": _str("command_to_run", command_to_run),
            "environment_variables": _list("environment_variables", environment_variables),
            "required_arguments": _list("required_arguments", required_arguments),
            "required_arguments_default_values": _dict(
                "required_arguments_default_values", required_arguments_default_values
            ),
        }

    async def _put(self, id: int, body: dict[str, Any]) -> TT:
        return await self._send("PUT", f"{self.path}{segment('id', id)}/", body)


class ContainerTaskTypeManager(TaskTypeManager[ContainerTaskType]):
    """``client.container_task_types``."""

    filter_fields: ClassVar[Mapping[str, str]] = {
        "name": "char", "description": "char", "user__username": "char", "command_to_run": "char",
        "container_image": "char", "container_type": "char", "datetime_created": "date",
    }  # fmt: skip

    path = "containertasktypes/"
    model = ContainerTaskType

    @staticmethod
    def _container(
        logs_path: Any, results_path: Any, container_image: Any, container_type: Any
    ) -> dict[str, Any]:
        check_choice("container_type", container_type, ("docker", "singularity"))
        return {
            "logs_path": _str("logs_path", logs_path, nullable=True),
            "results_path": _str("results_path", results_path, nullable=True),
            "container_image": _str("container_image", container_image),
            "container_type": container_type,
        }

    async def create(
        self,
        name: str,
        command_to_run: str,
        container_image: str,
        container_type: str,
        description: str = "",
        logs_path: str | None = "",
        results_path: str | None = "",
        environment_variables: Sequence[str] | None = None,
        required_arguments: Sequence[str] | None = None,
        required_arguments_default_values: Mapping[str, Any] | None = None,
        extra_data_to_post: Mapping[str, Any] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> ContainerTaskType:
        """Create a container task type."""
        body = self._body(
            name, description, command_to_run, environment_variables, required_arguments,
            required_arguments_default_values,
        )  # fmt: skip
        body.update(self._container(logs_path, results_path, container_image, container_type))
        body.update(_extra("extra_data_to_post", extra_data_to_post))
        return await self._send("POST", self.path, body)

    async def put(
        self,
        id: int,
        name: str,
        description: str,
        command_to_run: str,
        environment_variables: Sequence[str] | None,
        required_arguments: Sequence[str] | None,
        required_arguments_default_values: Mapping[str, Any] | None,
        logs_path: str | None,
        results_path: str | None,
        container_image: str,
        container_type: str,
        extra_data_to_put: Mapping[str, Any] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> ContainerTaskType:
        """Replace every field of a container task type (owner or superuser only)."""
        body = self._body(
            name, description, command_to_run, environment_variables, required_arguments,
            required_arguments_default_values,
        )  # fmt: skip
        body.update(self._container(logs_path, results_path, container_image, container_type))
        body.update(_extra("extra_data_to_put", extra_data_to_put))
        return await self._put(id, body)


class ExecutableTaskTypeManager(TaskTypeManager[ExecutableTaskType]):
    """``client.executable_task_types``."""

    filter_fields: ClassVar[Mapping[str, str]] = {
        "name": "char", "description": "char", "user__username": "char", "command_to_run": "char",
        "datetime_created": "date",
    }  # fmt: skip

    path = "executabletasktypes/"
    model = ExecutableTaskType

    async def create(
        self,
        name: str,
        command_to_run: str,
        description: str = "",
        environment_variables: Sequence[str] | None = None,
        required_arguments: Sequence[str] | None = None,
        required_arguments_default_values: Mapping[str, Any] | None = None,
        json_file_option: str | None = None,
        extra_data_to_post: Mapping[str, Any] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> ExecutableTaskType:
        """Create an executable task type."""
        body = self._body(
            name, description, command_to_run, environment_variables, required_arguments,
            required_arguments_default_values,
        )  # fmt: skip
        body["json_file_option"] = _str("json_file_option", json_file_option, nullable=True)
        body.update(_extra("extra_data_to_post", extra_data_to_post))
        return await self._send("POST", self.path, body)

    async def put(
        self,
        id: int,
        name: str,
        description: str,
        command_to_run: str,
        environment_variables: Sequence[str] | None,
        required_arguments: Sequence[str] | None,
        required_arguments_default_values: Mapping[str, Any] | None,
        json_file_option: str | None,
        extra_data_to_put: Mapping[str, Any] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> ExecutableTaskType:
        """Replace every field of an executable task type (owner or superuser only)."""
        body = self._body(
            name, description, command_to_run, environment_variables, required_arguments,
            required_arguments_default_values,
        )  # fmt: skip
        body["json_file_option"] = _str("json_file_option", json_file_option, nullable=True)
        body.update(_extra("extra_data_to_put", extra_data_to_put))
        return await self._put(id, body)
