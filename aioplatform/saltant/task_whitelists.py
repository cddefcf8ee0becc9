"""Task whitelists: list, get by id xor name, create, put, patch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..core.calls import CallTimeout
from ..core.paths import segment
from .models import TaskWhitelist
from .resources import Resource

__all__ = ["TaskWhitelistManager"]

_LISTS = ("whitelisted_container_task_types", "whitelisted_executable_task_types")


def _fields(values: dict[str, Any], *, skip_none: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in values.items():
        if value is None and skip_none:
            continue
        if key in _LISTS:
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(f"{key} must be a list of integer ids, got {type(value).__name__}")
            if any(not isinstance(v, int) or isinstance(v, bool) for v in value):
                raise TypeError(f"{key} must be a list of integer ids, got {value!r}")
            value = list(value)
        elif not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__}")
        body[key] = value
    return body


class TaskWhitelistManager(Resource[TaskWhitelist]):
    """``client.task_whitelists``."""

    filter_fields: ClassVar[Mapping[str, str]] = {
        "name": "char", "description": "char", "user__username": "char",
    }  # fmt: skip

    path = "taskwhitelists/"
    model = TaskWhitelist

    async def get(
        self, id: int | None = None, name: str | None = None, *, timeout: CallTimeout = None
    ) -> TaskWhitelist:
        """The whitelist with this id xor this name (``ValueError`` if both or neither)."""
        return await self._get_by_id_or_name(id, name)

    async def create(
        self,
        name: str,
        description: str = "",
        whitelisted_container_task_types: Sequence[int] | None = None,
        whitelisted_executable_task_types: Sequence[int] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> TaskWhitelist:
        """Create a whitelist of container and executable task type ids."""
        body = _fields(
            {
                "name": name,
                "description": description,
                "whitelisted_container_task_types": whitelisted_container_task_types or [],
                "whitelisted_executable_task_types": whitelisted_executable_task_types or [],
            },
            skip_none=False,
        )
        return await self._send("POST", self.path, body)

    async def patch(
        self,
        id: int,
        name: str | None = None,
        description: str | None = None,
        whitelisted_container_task_types: Sequence[int] | None = None,
        whitelisted_executable_task_types: Sequence[int] | None = None,
        *,
        timeout: CallTimeout = None,
    ) -> TaskWhitelist:
        """Change only the fields given (not None); owner or superuser only."""
        body = _fields(
            {
                "name": name,
                "description": description,
                "whitelisted_container_task_types": whitelisted_container_task_types,
                "whitelisted_executable_task_types": whitelisted_executable_task_types,
            },
            skip_none=True,
        )
        return await self._send("PATCH", f"{self.path}{segment('id', id)}/", body)

    async def put(
        self,
        id: int,
        name: str,
        description: str,
        whitelisted_container_task_types: Sequence[int],
        whitelisted_executable_task_types: Sequence[int],
        *,
        timeout: CallTimeout = None,
    ) -> TaskWhitelist:
        """Replace every field of a whitelist; owner or superuser only."""
        body = _fields(
            {
                "name": name,
                "description": description,
                "whitelisted_container_task_types": whitelisted_container_task_types,
                "whitelisted_executable_task_types": whitelisted_executable_task_types,
            },
            skip_none=False,
        )
        return await self._send("PUT", f"{self.path}{segment('id', id)}/", body)
