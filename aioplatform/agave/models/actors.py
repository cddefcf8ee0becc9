"""Actors (Abaco): Actor, Execution, ExecutionsSummary, Worker, Nonce, Alias and friends.

Abaco's field casing is a server setting (``web.case``): TACC production answered
camelCase (``defaultEnvironment``, ``createTime``, ``executionId``), other deployments
snake_case, and agavepy's own models mix both (``Worker.last_execution``,
``Nonce.actor_id``). Every model here accepts either spelling of every field: a
structure hook turns the wire keys into snake_case before cattrs reads them (when
both spellings are present the first non-null wins). ``raw`` keeps the object as sent.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import attrs
from cattrs.gen import make_dict_structure_fn

from .common import AgaveModel, converter

__all__ = [
    "ACTOR_STATUSES",
    "EXECUTION_TERMINAL_STATUSES",
    "Actor",
    "ActorMessages",
    "ActorPermissions",
    "ActorState",
    "Alias",
    "Execution",
    "ExecutionLogs",
    "ExecutionSummaryItem",
    "ExecutionsSummary",
    "MessageReceipt",
    "Nonce",
    "Worker",
]

ACTOR_STATUSES: frozenset[str] = frozenset({"SUBMITTED", "READY", "ERROR", "SHUTTING_DOWN"})
# An execution in one of these never changes again.
EXECUTION_TERMINAL_STATUSES: frozenset[str] = frozenset({"COMPLETE", "ERROR"})

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_keys(data: Any, aliases: Mapping[str, str] | None = None) -> Any:
    """``data`` with every key in snake_case (``createTime`` → ``create_time``), older
    names mapped by ``aliases`` (snake name → attribute); the first non-null value wins."""
    if not isinstance(data, Mapping):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        name = _CAMEL.sub(r"_\1", key).lower()
        name = (aliases or {}).get(name, name)
        if out.get(name) is None:
            out[name] = value
    return out


def _either_case(cls: type[Any], **aliases: str) -> None:
    read = make_dict_structure_fn(cls, converter)
    converter.register_structure_hook(cls, lambda data, _: read(snake_keys(data, aliases), cls))


@attrs.define
class Actor(AgaveModel):
    """An actor: its request fields plus ``id``, ``owner``, ``status`` (SUBMITTED → READY | ERROR)."""

    id: str = ""
    name: str | None = None
    owner: str = ""
    image: str = ""
    description: str | None = None
    status: str = ""
    status_message: str | None = None
    stateless: bool = True
    privileged: bool = False
    default_environment: dict[str, Any] = attrs.field(factory=dict)
    use_container_uid: bool | None = None
    max_workers: int | None = None
    mem_limit: Any = None
    max_cpus: Any = None
    token: bool | None = None
    hints: list[Any] = attrs.field(factory=list)
    link: str | None = None
    webhook: str | None = None
    mounts: list[Any] = attrs.field(factory=list)
    state: Any = None
    create_time: dt.datetime | None = None
    last_update_time: dt.datetime | None = None

    @property
    def ready(self) -> bool:
        return self.status == "READY"


@attrs.define
class MessageReceipt(AgaveModel):
    """What a message POST answers: the execution it started and the message as read
    (``"binary - omitted"`` for a binary message)."""

    execution_id: str = ""
    msg: Any = None


@attrs.define
class ActorMessages(AgaveModel):
    """``get_messages``: how many messages wait in the actor's mailbox."""

    messages: int = 0


@attrs.define
class ActorState(AgaveModel):
    """``get_state``: the actor's state, any JSON value (stateful actors only)."""

    state: Any = None


@attrs.define
class Execution(AgaveModel):
    """One execution of an actor (``SUBMITTED`` → ``RUNNING`` → ``COMPLETE``, or ``ERROR``)."""

    id: str = ""
    actor_id: str = ""
    executor: str | None = None
    worker_id: str | None = None
    status: str = ""
    message_received_time: dt.datetime | None = None
    start_time: dt.datetime | None = None
    finish_time: dt.datetime | None = None
    final_state: dict[str, Any] | None = None
    exit_code: int | None = None
    runtime: float | None = None
    cpu: float | None = None
    io: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in EXECUTION_TERMINAL_STATUSES


@attrs.define
class ExecutionSummaryItem(AgaveModel):
    """One execution as the listing shows it (only ``id`` in the older ``ids`` form)."""

    id: str = ""
    status: str | None = None
    start_time: dt.datetime | None = None
    message_received_time: dt.datetime | None = None
    finish_time: dt.datetime | None = None


@attrs.define
class ExecutionsSummary(AgaveModel):
    """``list_executions``: the actor's executions and totals.

    Abaco 1.5 answers ``executions: [{id, status, ...}]``; agavepy's model shows an
    older ``ids: [str]``. Either parses: ``executions`` and ``ids`` are both filled.
    No order is promised (Abaco runs one actor's executions in no guaranteed order).
    """

    actor_id: str = ""
    owner: str | None = None
    executions: list[ExecutionSummaryItem] = attrs.field(factory=list)
    ids: list[str] = attrs.field(factory=list)
    total_executions: int | None = None
    total_cpu: float | None = None
    total_io: float | None = None
    total_runtime: float | None = None


@attrs.define
class ExecutionLogs(AgaveModel):
    logs: str = ""


@attrs.define
class Worker(AgaveModel):
    id: str = ""
    status: str = ""
    image: str | None = None
    location: str | None = None
    cid: str | None = None
    host_id: str | None = None
    host_ip: str | None = None
    ch_name: str | None = None
    tenant: str | None = None
    last_execution_time: dt.datetime | None = None
    last_health_check_time: dt.datetime | None = None


@attrs.define
class Nonce(AgaveModel):
    """A nonce: a secret id that authorises calls on one actor without a token
    (``level`` READ or EXECUTE; ``max_uses`` -1 for unlimited). Its ``id`` is the secret:
    it is kept out of ``repr``."""

    id: str = attrs.field(default="", repr=False)
    actor_id: str | None = None
    alias: str | None = None
    owner: str | None = None
    level: str = ""
    max_uses: int | None = None
    remaining_uses: int | None = None
    current_uses: int | None = None
    description: str | None = None
    roles: list[Any] = attrs.field(factory=list)
    create_time: dt.datetime | None = None
    last_use_time: dt.datetime | None = None


@attrs.define
class Alias(AgaveModel):
    alias: str = ""
    actor_id: str = ""
    owner: str | None = None


@attrs.define
class ActorPermissions(AgaveModel):
    """``{"<username>": "READ|EXECUTE|UPDATE"}``: each user's level on an actor."""

    permissions: dict[str, str] = attrs.field(factory=dict)

    def level(self, username: str) -> str:
        """``username``'s level, ``"NONE"`` when not listed."""
        return self.permissions.get(username, "NONE")


def _summary(data: Any, _: Any) -> ExecutionsSummary:
    fields = snake_keys(data)
    if not isinstance(fields, dict):
        raise TypeError(f"expected a JSON object for ExecutionsSummary, got {type(data).__name__}")
    runs = fields.get("executions")
    ids = fields.get("ids")
    if runs is None and isinstance(ids, list):
        runs = [{"id": i} for i in ids]
    runs = [r for r in runs or [] if isinstance(r, Mapping)]
    fields["executions"] = runs
    fields["ids"] = [str(i) for i in ids] if isinstance(ids, list) else [str(r.get("id", "")) for r in runs]
    summary = _read_summary(fields, ExecutionsSummary)
    for item, source in zip(summary.executions, runs, strict=True):
        item.raw = dict(source)
    return summary


_either_case(Actor)
_either_case(MessageReceipt)
_either_case(ActorMessages)
_either_case(ActorState)
_either_case(Execution)
_either_case(ExecutionSummaryItem)
_either_case(ExecutionLogs)
_either_case(Worker, last_execution="last_execution_time", last_health_check="last_health_check_time")
_either_case(Nonce)
_either_case(Alias)
# Built after the item hook above, which it captures.
_read_summary = make_dict_structure_fn(ExecutionsSummary, converter)
converter.register_structure_hook(ExecutionsSummary, _summary)
converter.register_structure_hook(
    ActorPermissions,
    lambda data, _: ActorPermissions(
        permissions={str(k): str(v) for k, v in data.items() if isinstance(v, str)}
    ),
)
