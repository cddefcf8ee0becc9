"""flowserv's JSON shapes as attrs classes, and the converter that reads them.

Labels follow ``flowserv/view/*.py``; camelCase wire names are mapped explicitly.
Unknown keys from a newer server are ignored; every key not always present is
optional. A user's ``token`` never appears in a ``repr``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from ..core.serde import make_converter, rename

__all__ = ["User", "Member", "Group", "FileHandle", "Workflow", "converter"]


@attrs.frozen
class User:
    """A registered user. ``token`` is the API key when the server included one (login, whoami)."""

    id: str
    username: str
    token: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class Member:
    """A group member as a group handle lists it."""

    id: str
    username: str


@attrs.frozen
class FileHandle:
    """A file uploaded to a group: its id, sanitized name, upload time (UTC) and size in bytes."""

    id: str
    name: str
    created_at: dt.datetime
    size: int


@attrs.frozen
class Group:
    """A workflow group (a "submission" in ROB).

    Listings carry only ``id``, ``name`` and ``workflow_id``; :meth:`Groups.get` and the
    answers of create/update also fill ``members``, ``files`` and ``parameters``.
    ``runs`` is None unless the server listed them (``get`` with a valid login);
    ``config`` is the workflow engine's configuration, if any.
    """

    id: str
    name: str
    workflow_id: str
    members: tuple[Member, ...] = ()
    files: tuple[FileHandle, ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    runs: tuple[dict[str, Any], ...] | None = None
    config: dict[str, Any] | None = None

    def is_member(self, user_id: str) -> bool:
        """Whether the user with id ``user_id`` is among this handle's members."""
        return any(m.id == user_id for m in self.members)


@attrs.frozen
class Workflow:
    """A workflow (benchmark) that groups are created for."""

    id: str
    name: str
    description: str | None = None
    instructions: str | None = None


converter = make_converter()
rename(converter, FileHandle, created_at="createdAt")
rename(converter, Group, workflow_id="workflow")
