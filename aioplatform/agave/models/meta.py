"""Meta: Metadata, MetadataSchema and MetaPermission (agave.md §6.5).

A metadata record's ``value`` is whatever JSON was stored — object, array, string,
number or boolean — parsed (agavepy's model types it as a string; the server sends
parsed JSON). A schema's ``schema`` is the JSON Schema document as stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from ...core.serde import rename
from .common import AgaveModel, Permission, converter

__all__ = ["MetaPermission", "Metadata", "MetadataSchema"]


@attrs.define
class Metadata(AgaveModel):
    """One metadata record: ``name``, its JSON ``value``, what it is associated with."""

    uuid: str = ""
    name: str = ""
    value: Any = None
    owner: str = ""
    schema_id: str | None = None
    association_ids: list[str] = attrs.field(factory=list)
    internal_username: str | None = None
    created: dt.datetime | None = None
    last_updated: dt.datetime | None = None


@attrs.define
class MetadataSchema(AgaveModel):
    """One metadata schema: the JSON Schema document records with its ``schemaId`` must match."""

    uuid: str = ""
    schema: Any = None
    owner: str = ""
    internal_username: str | None = None
    created: dt.datetime | None = None
    last_updated: dt.datetime | None = None


MetaPermission = Permission  # one user's rights on a record or schema (the one Agave permission model)


rename(
    converter, Metadata, schema_id="schemaId", association_ids="associationIds",
    internal_username="internalUsername", last_updated="lastUpdated",
)  # fmt: skip
_metadata_hook = converter.get_structure_hook(Metadata)


def _structure_metadata(data: Any, cls: type[Any]) -> Metadata:
    # associationIds: a list on the wire; null or a single id (older servers, hand-made
    # fixtures) read as the list they mean.
    if isinstance(data, Mapping):
        ids = data.get("associationIds")
        if ids is None or isinstance(ids, str):
            data = {**data, "associationIds": [] if ids is None else [ids]}
    result: Metadata = _metadata_hook(data, cls)
    return result


converter.register_structure_hook(Metadata, _structure_metadata)
rename(converter, MetadataSchema, internal_username="internalUsername", last_updated="lastUpdated")
