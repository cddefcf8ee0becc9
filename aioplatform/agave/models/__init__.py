"""Agave's models: attrs classes, one module per resource, all re-exported here."""

from .common import AgaveModel, converter, parse_agave_datetime, structure
from .files import FileHistoryEvent, FileListing, FilePermission, LogicalFile, PermissionBits, RemoteFile
from .jobs import (
    ACTIVE_STATUSES,
    FAILED_STATUSES,
    TERMINAL_STATUSES,
    Job,
    JobHistoryEvent,
    JobPermission,
    JobStatus,
    JobSummary,
)

__all__ = [
    "AgaveModel",
    "converter",
    "parse_agave_datetime",
    "structure",
    "FileHistoryEvent",
    "FileListing",
    "FilePermission",
    "LogicalFile",
    "PermissionBits",
    "RemoteFile",
]
__all__ += [
    "ACTIVE_STATUSES", "FAILED_STATUSES", "TERMINAL_STATUSES", "Job", "JobHistoryEvent", "JobPermission",
    "JobStatus", "JobSummary",
]  # fmt: skip
