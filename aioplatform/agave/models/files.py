"""Files models: listing entries (RemoteFile), upload/manage results (LogicalFile),
permissions and history events, as the files service answers them (agave.md §6.3).

Every field has a default, so an entry a server trims (``filter=``) still parses; the
whole wire object stays in ``raw`` (``_links`` included).
"""

from __future__ import annotations

import datetime as dt

import attrs

from ...core.serde import rename
from .common import AgaveModel, converter

__all__ = [
    "FileHistoryEvent",
    "FileListing",
    "FilePermission",
    "LogicalFile",
    "PermissionBits",
    "RemoteFile",
]


@attrs.define
class RemoteFile(AgaveModel):
    """One entry of a files listing. A directory listing starts with the directory itself,
    named ``"."`` (:attr:`is_self`)."""

    name: str = ""
    path: str = ""
    last_modified: dt.datetime | None = None
    length: int = 0
    permissions: str = ""
    format: str = ""
    mime_type: str = ""
    type: str = ""
    system: str = ""

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    @property
    def is_self(self) -> bool:
        """The ``"."`` entry a directory listing starts with (the directory itself)."""
        return self.name == "."


FileListing = RemoteFile
"""The name agave.md gives a listing entry; the same class as agavepy's ``RemoteFile``."""


@attrs.define
class LogicalFile(AgaveModel):
    """What an upload, import or manage action answers: the file's record and its
    staging ``status`` (``STAGING_QUEUED`` right after an upload)."""

    name: str = ""
    uuid: str = ""
    owner: str = ""
    internal_username: str | None = None
    last_modified: dt.datetime | None = None
    source: str | None = None
    path: str = ""
    status: str = ""
    system_id: str = ""
    native_format: str = ""


@attrs.define
class PermissionBits(AgaveModel):
    read: bool = False
    write: bool = False
    execute: bool = False


@attrs.define
class FilePermission(AgaveModel):
    """One user's permission on a path (``recursive``: it applies below the path too)."""

    username: str = ""
    internal_username: str | None = None
    permission: PermissionBits = attrs.field(factory=PermissionBits)
    recursive: bool = False


@attrs.define
class FileHistoryEvent(AgaveModel):
    """One event of a path's history (``CREATED``, ``STAGING_COMPLETED``, ``PERMISSION_GRANT`` ...)."""

    status: str = ""
    created: dt.datetime | None = None
    created_by: str = ""
    description: str = ""


rename(converter, RemoteFile, last_modified="lastModified", mime_type="mimeType")
rename(
    converter,
    LogicalFile,
    internal_username="internalUsername",
    last_modified="lastModified",
    system_id="systemId",
    native_format="nativeFormat",
)
rename(converter, FilePermission, internal_username="internalUsername")
rename(converter, FileHistoryEvent, created_by="createdBy")
