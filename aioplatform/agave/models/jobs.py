"""Jobs: Job, JobSummary, JobStatus, JobHistoryEvent, JobPermission and the status sets.

Two job schemas are in the wild (agave.md §6.4): the classic one (servers up to
2.2.22: ``executionSystem``, ``startTime``, ``endTime`` ...) and the "Aloe" one of
newer Tapis v2 servers (``systemId``, ``started``, ``ended``, ``remoteSubmitted``,
``lastStatusMessage``, ``maxHours`` ...). Both parse into the same attributes; the
object as sent stays in ``raw`` (``job["remoteOutcome"]`` still works).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
from cattrs.gen import make_dict_structure_fn, override

from ...core.serde import rename
from .common import AgaveModel, Permission, converter

__all__ = [
    "ACTIVE_STATUSES",
    "FAILED_STATUSES",
    "TERMINAL_STATUSES",
    "Job",
    "JobHistoryEvent",
    "JobPermission",
    "JobStatus",
    "JobSummary",
]

# Finished for good (agave.md §6.4): a job in one of these never changes again.
TERMINAL_STATUSES: frozenset[str] = frozenset({"FINISHED", "FAILED", "STOPPED", "KILLED"})
# The failure set (ARCHIVING_FAILED precedes a terminal status).
FAILED_STATUSES: frozenset[str] = frozenset({"FAILED", "KILLED", "ARCHIVING_FAILED"})
ACTIVE_STATUSES: frozenset[str] = frozenset(
    {
        "PENDING",
        "PROCESSING_INPUTS",
        "STAGING_INPUTS",
        "STAGED",
        "STAGING_JOB",
        "SUBMITTING",
        "QUEUED",
        "RUNNING",
        "PAUSED",
        "CLEANING_UP",
        "ARCHIVING",
        "ARCHIVING_FINISHED",
        "ARCHIVING_FAILED",
    }
)

# Aloe wire name -> classic wire name, for the fields both schemas carry.
_ALOE_NAMES = {
    "systemId": "executionSystem",
    "started": "startTime",
    "ended": "endTime",
    "remoteSubmitted": "submitTime",
    "lastStatusMessage": "message",
    "remoteJobId": "localId",
    "submitRetries": "retries",
}


# Keys that make _classic change anything: a classic object without them is its own view.
_ALOE_KEYS = frozenset(_ALOE_NAMES) | {"lastModified", "maxHours"}


def _classic(data: Any) -> Any:
    """The classic view of a job object: Aloe names copied onto the classic ones they mean."""
    if not isinstance(data, Mapping) or _ALOE_KEYS.isdisjoint(data):
        return data  # read only (the model keeps its own copy in ``raw``)
    out = dict(data)
    for aloe, classic in _ALOE_NAMES.items():
        if out.get(classic) is None and out.get(aloe) is not None:
            out[classic] = out[aloe]
    if out.get("lastUpdated") is None and out.get("lastModified") is not None:
        out["lastUpdated"] = out["lastModified"]
    hours = out.get("maxHours")
    if out.get("maxRunTime") is None and isinstance(hours, (int, float)) and not isinstance(hours, bool):
        seconds = round(float(hours) * 3600)
        out["maxRunTime"] = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return out


@attrs.define
class JobSummary(AgaveModel):
    """A job as listings show it (``jobs.list``, ``jobs.search``)."""

    id: str = ""
    name: str = ""
    owner: str = ""
    app_id: str = ""
    execution_system: str | None = None
    status: str = ""
    created: dt.datetime | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    @property
    def finished(self) -> bool:
        """Whether the job reached a terminal status (FINISHED, FAILED, STOPPED, KILLED)."""
        return self.status in TERMINAL_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


@attrs.define
class Job(JobSummary):
    """A job in full (``jobs.get``, ``jobs.submit``, ``jobs.resubmit``)."""

    last_updated: dt.datetime | None = None
    submit_time: dt.datetime | None = None
    message: str | None = None
    batch_queue: str | None = None
    node_count: int | None = None
    processors_per_node: int | None = None
    memory_per_node: Any = None  # "1GB" or a number of GB
    max_run_time: str | None = None
    archive: bool | None = None
    archive_system: str | None = None
    archive_path: str | None = None
    output_path: str | None = None
    retries: int | None = None
    local_id: str | None = None
    inputs: dict[str, Any] = attrs.field(factory=dict)
    parameters: dict[str, Any] = attrs.field(factory=dict)
    notifications: list[Any] = attrs.field(factory=list)


@attrs.define
class JobStatus(AgaveModel):
    """``jobs.get_status``: the small resource worth polling."""

    id: str = ""
    status: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


@attrs.define
class JobHistoryEvent(AgaveModel):
    """One entry of ``jobs.get_history``: a status the job entered, when and why."""

    status: str = ""
    created: dt.datetime | None = None
    created_by: str | None = None
    description: str = ""


JobPermission = Permission  # one user's rights on a job (the one Agave permission model)


_SUMMARY_NAMES = {
    "app_id": "appId",
    "execution_system": "executionSystem",
    "start_time": "startTime",
    "end_time": "endTime",
}
_JOB_NAMES = {
    **_SUMMARY_NAMES,
    "last_updated": "lastUpdated",
    "submit_time": "submitTime",
    "batch_queue": "batchQueue",
    "node_count": "nodeCount",
    "processors_per_node": "processorsPerNode",
    "memory_per_node": "memoryPerNode",
    "max_run_time": "maxRunTime",
    "archive_system": "archiveSystem",
    "archive_path": "archivePath",
    "output_path": "outputPath",
    "local_id": "localId",
}


def _both_schemas(cls: type[Any], names: dict[str, str]) -> None:
    rename(converter, cls, **names)  # the unstructure side (and a classic-only hook, replaced below)
    overrides = {attr: override(rename=wire) for attr, wire in names.items()}
    classic = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]
    converter.register_structure_hook(cls, lambda data, _: classic(_classic(data), cls))


_both_schemas(JobSummary, _SUMMARY_NAMES)
_both_schemas(Job, _JOB_NAMES)
rename(converter, JobHistoryEvent, created_by="createdBy")
