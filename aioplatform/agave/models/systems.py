"""Systems: System, SystemSummary, its storage/login/queue parts, SystemRole, SystemCredential.

Enumerations (``type``, ``status``, ``storage.protocol``, ``scheduler``, roles, credential
types) are plain strings: a value a newer server added parses as it came. Nested parts
keep their wire object in ``raw`` as the top-level models do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
from cattrs.gen import make_dict_structure_fn, override

from .common import AgaveModel, converter

__all__ = [
    "BatchQueue",
    "LoginConfig",
    "StorageConfig",
    "System",
    "SystemCredential",
    "SystemRole",
    "SystemSummary",
    "keep_raw",
]

T = TypeVar("T", bound=AgaveModel)


def keep_raw(cls: type[T], **wire_names: str) -> None:
    """Structure ``cls`` with explicit wire names, keeping the wire object in ``raw`` (for
    models nested in others, which :func:`~.common.structure` does not reach)."""
    base = make_dict_structure_fn(
        cls,
        converter,
        **{attr: override(rename=wire) for attr, wire in wire_names.items()},  # type: ignore[arg-type]
    )

    def hook(data: Any, _: Any) -> T:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
        obj: T = base(data, cls)
        obj.raw = dict(data)
        return obj

    converter.register_structure_hook(cls, hook)


@attrs.define
class StorageConfig(AgaveModel):
    """Where and how a system stores files (``auth`` holds only the credential's ``type``)."""

    protocol: str | None = None
    host: str | None = None
    port: int | None = None
    root_dir: str | None = None
    home_dir: str | None = None
    public_apps_dir: str | None = None
    zone: str | None = None
    resource: str | None = None
    container: str | None = None
    mirror: bool | None = None
    auth: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class LoginConfig(AgaveModel):
    """How an execution system is logged into (``protocol`` SSH, GSISSH, LOCAL, API ...)."""

    protocol: str | None = None
    host: str | None = None
    port: int | None = None
    auth: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class BatchQueue(AgaveModel):
    """One queue of an execution system (limits as the server states them)."""

    name: str = ""
    default: bool = False
    max_jobs: int | None = None
    max_user_jobs: int | None = None
    max_nodes: int | None = None
    max_processors_per_node: int | None = None
    max_memory_per_node: Any = None
    max_requested_time: str | None = None
    custom_directives: str | None = None
    mapped_name: str | None = None
    description: str | None = None


@attrs.define
class SystemSummary(AgaveModel):
    """A system in a listing. ``default``: it is the caller's default system of its type."""

    id: str = ""
    name: str | None = None
    type: str | None = None
    description: str | None = None
    status: str | None = None
    public: bool = False
    default: bool = False


@attrs.define
class System(SystemSummary):
    """A storage or execution system (the execution fields are None on a storage system)."""

    uuid: str | None = None
    available: bool | None = None
    site: str | None = None
    revision: int | None = None
    global_default: bool = False
    last_modified: dt.datetime | None = None
    owner: str | None = None
    storage: StorageConfig | None = None
    execution_type: str | None = None
    scheduler: str | None = None
    environment: str | None = None
    startup_script: str | None = None
    max_system_jobs: int | None = None
    max_system_jobs_per_user: int | None = None
    work_dir: str | None = None
    scratch_dir: str | None = None
    queues: list[BatchQueue] = attrs.field(factory=list)
    login: LoginConfig | None = None


@attrs.define
class SystemRole(AgaveModel):
    """A user's role on a system: NONE, GUEST, USER, PUBLISHER, ADMIN or OWNER."""

    username: str = ""
    role: str = ""


@attrs.define
class SystemCredential(AgaveModel):
    """A stored credential, as listed: its kind and user, never its secret.

    ``internal_username`` is None for the system's own (default) credential;
    ``credential_type`` is LOGIN or STORAGE; ``type`` the auth type (PASSWORD, SSHKEYS ...).
    """

    type: str | None = None
    internal_username: str | None = None
    credential_type: str | None = None
    username: str | None = None
    default: bool | None = None
    valid: bool | None = None
    created: dt.datetime | None = None
    last_modified: dt.datetime | None = None


keep_raw(
    StorageConfig, root_dir="rootDir", home_dir="homeDir", public_apps_dir="publicAppsDir"
)  # fmt: skip
keep_raw(LoginConfig)
keep_raw(
    BatchQueue,
    max_jobs="maxJobs",
    max_user_jobs="maxUserJobs",
    max_nodes="maxNodes",
    max_processors_per_node="maxProcessorsPerNode",
    max_memory_per_node="maxMemoryPerNode",
    max_requested_time="maxRequestedTime",
    custom_directives="customDirectives",
    mapped_name="mappedName",
)
keep_raw(SystemSummary)
keep_raw(
    System,
    global_default="globalDefault",
    last_modified="lastModified",
    execution_type="executionType",
    startup_script="startupScript",
    max_system_jobs="maxSystemJobs",
    max_system_jobs_per_user="maxSystemJobsPerUser",
    work_dir="workDir",
    scratch_dir="scratchDir",
)
keep_raw(SystemRole)
keep_raw(
    SystemCredential,
    internal_username="internalUsername",
    credential_type="credentialType",
    last_modified="lastModified",
)
