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

__all__ = [
    "User",
    "Member",
    "Group",
    "FileHandle",
    "Parameter",
    "Route",
    "ServiceDescriptor",
    "Workflow",
    "converter",
]


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
class Parameter:
    """A workflow template parameter as the server declares it (``flowserv/model/parameter``).

    ``dtype`` is ``string``, ``int``, ``float``, ``bool``, ``select``, ``file`` (or a newer
    type); ``label``, ``help``, ``default_value`` and ``group`` are None when the template
    did not set them; ``range`` (numbers, e.g. ``"[0.0,10.0]"``), ``values`` (a select's
    ``{"name", "value", "isDefault"}`` choices) and ``target`` (a file's path in the run)
    only for their types.
    """

    name: str
    dtype: str
    index: int = 0
    is_required: bool = False
    label: str | None = None
    help: str | None = None
    default_value: Any = None
    group: str | None = None
    range: str | None = None
    values: tuple[dict[str, Any], ...] | None = None
    target: str | None = None

    @property
    def display_name(self) -> str:
        """The label, else the name (as flowserv shows a parameter)."""
        return self.label if self.label is not None else self.name


@attrs.frozen
class Group:
    """A workflow group (a "submission" in ROB).

    Listings carry only ``id``, ``name`` and ``workflow_id``; :meth:`Groups.get` and the
    answers of create/update also fill ``members``, ``files`` and ``parameters`` (the
    workflow template's parameters, copied into the group).
    ``runs`` is None unless the server listed them (``get`` with a valid login);
    ``config`` is the workflow engine's configuration, if any.
    """

    id: str
    name: str
    workflow_id: str
    members: tuple[Member, ...] = ()
    files: tuple[FileHandle, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    runs: tuple[dict[str, Any], ...] | None = None
    config: dict[str, Any] | None = None

    def is_member(self, user_id: str) -> bool:
        """Whether the user with id ``user_id`` is among this handle's members."""
        return any(m.id == user_id for m in self.members)


@attrs.frozen
class Workflow:
    """A workflow (benchmark) that groups are created for.

    ``parameters`` are its template's parameter declarations: filled by
    :meth:`Workflows.get`, empty in a listing (the server lists none there).
    """

    id: str
    name: str
    description: str | None = None
    instructions: str | None = None
    parameters: tuple[Parameter, ...] = ()


@attrs.frozen
class Route:
    """One route the service descriptor advertises (``users:login`` -> ``users/login``)."""

    id: str
    pattern: str


@attrs.frozen
class ServiceDescriptor:
    """``GET /``: the service's name, flowserv version, API URL and routes; ``username``
    only when the call carried a valid API key.

    Reads like the dict :meth:`FlowservClient.describe` used to return, too:
    ``descriptor["version"]`` and ``descriptor.get("username")`` (the body as sent).
    """

    name: str
    version: str
    url: str
    routes: list[Route] = attrs.Factory(list)
    username: str | None = None
    body: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)


converter = make_converter()
rename(converter, FileHandle, created_at="createdAt")
rename(converter, Group, workflow_id="workflow")
rename(converter, Parameter, is_required="isRequired", default_value="defaultValue")
