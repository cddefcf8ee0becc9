"""Agave's models: attrs classes, one module per resource, all re-exported here."""

from .actors import (
    Actor,
    ActorMessages,
    ActorPermissions,
    ActorState,
    Alias,
    Execution,
    ExecutionLogs,
    ExecutionsSummary,
    ExecutionSummaryItem,
    MessageReceipt,
    Nonce,
    Worker,
)
from .apps import App, AppArgument, AppPermission, AppSummary
from .clients import Client, ClientSubscription
from .common import AgaveModel, Permission, converter, parse_agave_datetime, structure
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
from .meta import Metadata, MetadataSchema, MetaPermission
from .notifications import Notification, NotificationAttempt, NotificationPolicy
from .profiles import Profile
from .systems import (
    BatchQueue,
    LoginConfig,
    StorageConfig,
    System,
    SystemCredential,
    SystemRole,
    SystemSummary,
)

__all__ = [
    "AgaveModel",
    "Permission",
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
__all__ += ["App", "AppArgument", "AppPermission", "AppSummary"]
__all__ += [
    "BatchQueue", "LoginConfig", "StorageConfig", "System", "SystemCredential", "SystemRole", "SystemSummary",
]  # fmt: skip
__all__ += ["Client", "ClientSubscription"]
__all__ += ["Metadata", "MetadataSchema", "MetaPermission"]
__all__ += [
    "Actor", "ActorMessages", "ActorPermissions", "ActorState", "Alias", "Execution", "ExecutionLogs",
    "ExecutionsSummary", "ExecutionSummaryItem", "MessageReceipt", "Nonce", "Worker",
]  # fmt: skip
__all__ += ["Notification", "NotificationAttempt", "NotificationPolicy", "Profile"]
