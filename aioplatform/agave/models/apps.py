"""Apps: App, AppSummary, AppArgument (inputs, parameters, outputs) and AppPermission.

Enumerations (``parallelism``, ``executionType``, parameter types) are plain strings, so
values a newer server added parse as they came.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from .common import AgaveModel, Permission
from .systems import keep_raw

__all__ = ["App", "AppArgument", "AppPermission", "AppSummary"]


@attrs.define
class AppArgument(AgaveModel):
    """One input, parameter or output: ``value`` (default, type, required, visible ...),
    ``details`` (label, argument ...) and ``semantics`` (ontology, cardinality ...)."""

    id: str = ""
    value: dict[str, Any] = attrs.field(factory=dict)
    details: dict[str, Any] = attrs.field(factory=dict)
    semantics: dict[str, Any] = attrs.field(factory=dict)

    @property
    def default(self) -> Any:
        """The default value (``value.default``, or the older ``value.defaultValue``)."""
        return self.value.get("default", self.value.get("defaultValue"))


@attrs.define
class AppSummary(AgaveModel):
    """An app in a listing. A private app's id is ``<name>-<version>``, a public one's
    ``<name>-<version>u<revision>``."""

    id: str = ""
    name: str | None = None
    version: str | None = None
    revision: int | None = None
    execution_system: str | None = None
    short_description: str | None = None
    is_public: bool = False
    label: str | None = None
    last_modified: dt.datetime | None = None


@attrs.define
class App(AppSummary):
    """A registered app, as ``apps.get`` answers it."""

    uuid: str | None = None
    owner: str | None = None
    available: bool | None = None
    icon: str | None = None
    parallelism: str | None = None
    default_processors_per_node: int | None = None
    default_memory_per_node: Any = None
    default_node_count: int | None = None
    default_max_run_time: str | None = None
    default_queue: str | None = None
    help_uri: str | None = None
    long_description: str | None = None
    tags: list[str] = attrs.field(factory=list)
    ontology: list[str] = attrs.field(factory=list)
    execution_type: str | None = None
    deployment_path: str | None = None
    deployment_system: str | None = None
    template_path: str | None = None
    test_path: str | None = None
    checkpointable: bool | None = None
    modules: list[str] = attrs.field(factory=list)
    created: dt.datetime | None = None
    inputs: list[AppArgument] = attrs.field(factory=list)
    parameters: list[AppArgument] = attrs.field(factory=list)
    outputs: list[AppArgument] = attrs.field(factory=list)


AppPermission = Permission  # one user's rights on an app (the one Agave permission model)


_SUMMARY_NAMES = {
    "execution_system": "executionSystem",
    "short_description": "shortDescription",
    "is_public": "isPublic",
    "last_modified": "lastModified",
}
keep_raw(AppArgument)
keep_raw(AppSummary, **_SUMMARY_NAMES)
keep_raw(
    App,
    **_SUMMARY_NAMES,
    default_processors_per_node="defaultProcessorsPerNode",
    default_memory_per_node="defaultMemoryPerNode",
    default_node_count="defaultNodeCount",
    default_max_run_time="defaultMaxRunTime",
    default_queue="defaultQueue",
    help_uri="helpURI",
    long_description="longDescription",
    execution_type="executionType",
    deployment_path="deploymentPath",
    deployment_system="deploymentSystem",
    template_path="templatePath",
    test_path="testPath",
)
keep_raw(AppPermission)
